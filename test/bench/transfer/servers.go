package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// fileServerEnv, when set to a directory, turns this program into the
// net/http helper that serves it (a process of its own, as Ferry is, so
// neither server shares a runtime with the client).
const fileServerEnv = "FERRY_BENCH_FILESERVER_DIR"

// proc is a server process started by the benchmark.
type proc struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	done    chan struct{}
	waitErr error
	once    sync.Once
	stopErr error
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop asks the process to stop (SIGTERM), waits, and kills it if it has
// not exited after a while. Safe to call more than once.
func (p *proc) stop() { _ = p.stopAndWait() }

func (p *proc) stopAndWait() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			p.stopErr = p.waitErr
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = errors.New("did not exit within 15s of SIGTERM; killed")
		}
	})
	return p.stopErr
}

func (p *proc) start() error {
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.done = make(chan struct{})
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return nil
}

// startFerry starts `ferry server` on a free loopback port with its
// artifacts destination in artifacts, and waits until /health answers.
func startFerry(ctx context.Context, bin, work, artifacts string) (*proc, error) {
	logPath := filepath.Join(work, "ferry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	cmd := exec.Command(bin, "server",
		"--host", "127.0.0.1", "--port", "0",
		"--artifacts-destination", artifacts,
		// Not opened today; kept inside the work dir for when it is.
		"--backend-store-uri", "sqlite:///"+filepath.Join(work, "mlflow.db"),
		"--log-format", "json")
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = w, w
	p := &proc{cmd: cmd, logPath: logPath}
	err = p.start()
	w.Close()
	if err != nil {
		r.Close()
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}

	// Copy the log to a file, watching for the line that names the address.
	addrc := make(chan string, 1)
	go func() {
		defer logFile.Close()
		defer r.Close()
		br := bufio.NewReader(r)
		found := false
		for {
			line, err := br.ReadString('\n')
			logFile.WriteString(line)
			if !found && strings.Contains(line, `"ferry listening"`) {
				var m struct{ Addr string }
				if json.Unmarshal([]byte(line), &m) == nil && m.Addr != "" {
					found = true
					addrc <- m.Addr
				}
			}
			if err != nil {
				return
			}
		}
	}()

	deadline := time.After(30 * time.Second)
	select {
	case p.addr = <-addrc:
	case <-p.done:
		return nil, fmt.Errorf("ferry exited at start (%v); log:\n%s", p.waitErr, tail(logPath))
	case <-deadline:
		p.stop()
		return nil, fmt.Errorf("ferry did not report its address within 30s; log:\n%s", tail(logPath))
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	for {
		resp, err := http.Get("http://" + p.addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("ferry exited at start (%v); log:\n%s", p.waitErr, tail(logPath))
		case <-deadline:
			p.stop()
			return nil, fmt.Errorf("ferry /health not OK within 30s; log:\n%s", tail(logPath))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startFileServer starts this program again as the net/http helper over
// dir (see serveFiles).
func startFileServer(ctx context.Context, dir string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), fileServerEnv+"="+dir)
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	p := &proc{cmd: cmd}
	err = p.start()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("start FileServer helper: %w", err)
	}
	addrc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		addrc <- strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	}()
	select {
	case p.addr = <-addrc:
		if p.addr == "" {
			p.stop()
			return nil, errors.New("FileServer helper did not report its address")
		}
		return p, nil
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, errors.New("FileServer helper did not start within 30s")
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// serveFiles is the helper process: http.FileServer over dir for GET, and
// for PUT a handler that reads the body into nothing (the HTTP transport
// alone, for reference), on a free loopback port announced on stdout, until
// SIGTERM or SIGINT.
func serveFiles(dir string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FileServer helper:", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	files := http.FileServer(http.Dir(dir))
	buf := make([]byte, 256<<10) // the size of Ferry's upload buffer
	var mu sync.Mutex
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			files.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, err := io.CopyBuffer(discard{}, r.Body, buf); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "{}")
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: time.Minute}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "FileServer helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// procCPU is the user+system CPU time a process has used so far, in
// seconds (/proc/<pid>/stat fields 14 and 15, in USER_HZ = 100 ticks).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return float64(ut+st) / 100, nil
}

// vmHWM is a process's peak resident set size in bytes so far.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status VmHWM: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// tail returns the end of a log file for an error message.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 4096 {
		_, _ = f.Seek(-4096, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
