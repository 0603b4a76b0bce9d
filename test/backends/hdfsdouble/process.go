package hdfsdouble

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Build compiles cmd/hdfsdouble into dir and returns the binary's path.
// It runs the go command, so it works from any test inside the module.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "hdfsdouble")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ferryml/ferry/test/backends/hdfsdouble/cmd/hdfsdouble").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("hdfsdouble: go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Process is a double running as a child process (see Build), which a
// test can kill and start again on the same directory and ports.
type Process struct {
	NamenodeAddr, DatanodeAddr string

	bin  string
	opts Options
	cmd  *exec.Cmd
	done chan struct{}
}

// StartProcess starts the binary bin on o.Dir (o.Logger is ignored: the
// child logs warnings to this process's stderr).
func StartProcess(bin string, o Options) (*Process, error) {
	p := &Process{bin: bin, opts: o}
	return p, p.start()
}

func (p *Process) start() error {
	args := []string{"-dir", p.opts.Dir}
	nn, dn := p.opts.NamenodeAddr, p.opts.DatanodeAddr
	if p.NamenodeAddr != "" { // a restart keeps the ports clients know
		nn, dn = p.NamenodeAddr, p.DatanodeAddr
	}
	if nn != "" {
		args = append(args, "-namenode", nn)
	}
	if dn != "" {
		args = append(args, "-datanode", dn)
	}
	if p.opts.BlockSize > 0 {
		args = append(args, "-block-size", strconv.FormatInt(p.opts.BlockSize, 10))
	}
	if p.opts.ListLimit > 0 {
		args = append(args, "-list-limit", strconv.Itoa(p.opts.ListLimit))
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = p.exec(args); err == nil {
			return nil
		}
		// The old process's ports can take a moment to be free again.
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (p *Process) exec(args []string) error {
	cmd := exec.Command(p.bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Wait()
		return fmt.Errorf("hdfsdouble did not start: %v", err)
	}
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "namenode="); ok {
			p.NamenodeAddr = v
		} else if v, ok := strings.CutPrefix(f, "datanode="); ok {
			p.DatanodeAddr = v
		}
	}
	if p.NamenodeAddr == "" || p.DatanodeAddr == "" {
		cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("hdfsdouble: unexpected start line %q", line)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.done) }()
	return nil
}

// Kill kills the process at once (SIGKILL) and waits for it to be gone.
func (p *Process) Kill() error {
	if p.cmd == nil {
		return errors.New("hdfsdouble: not running")
	}
	err := p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
	return err
}

// Restart starts the process again on the same directory and ports.
func (p *Process) Restart() error {
	if p.cmd != nil {
		return errors.New("hdfsdouble: still running")
	}
	return p.start()
}

// Stop ends the process if it runs.
func (p *Process) Stop() {
	if p.cmd != nil {
		_ = p.Kill()
	}
}
