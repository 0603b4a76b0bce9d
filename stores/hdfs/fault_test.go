package hdfs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferryml/ferry/config"
	"github.com/ferryml/ferry/proxy"
	"github.com/ferryml/ferry/stores"
)

// startProxy serves store through Ferry's artifact routes in-process and
// returns the artifacts base URL.
func startProxy(t *testing.T, store stores.Store) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	cfg := &config.Config{
		Host: "127.0.0.1", ServeArtifacts: true, ArtifactsDestination: "hdfs://double/",
		ShutdownTimeout: 10 * time.Second, PresignedDownloadTTL: 300 * time.Second, Workers: 1,
	}
	srv, err := proxy.New(proxy.Options{
		Config: cfg, Artifacts: stores.Instrument(store, "hdfs", stores.NewMetrics(reg), log),
		Registry: reg, Gatherer: reg, Log: log, FerryVersion: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.App.Listener(ln) }()
	t.Cleanup(func() {
		_ = srv.App.ShutdownWithTimeout(10 * time.Second)
		<-served
	})
	return "http://" + ln.Addr().String() + "/api/2.0/mlflow-artifacts/artifacts/"
}

func request(t *testing.T, method, url string, body io.Reader, size int64) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = size
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Minute}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestDoubleKilledMidUpload: the HDFS double is killed (SIGKILL, namenode
// and datanode at once) while an upload streams through Ferry. The client
// gets 503 TEMPORARILY_UNAVAILABLE, nothing of the upload is visible once
// the double is back, what was committed before is intact, and the very
// next requests succeed without restarting Ferry.
func TestDoubleKilledMidUpload(t *testing.T) {
	d := startDouble(t)
	s := newStore(t, d.NamenodeAddr)
	base := startProxy(t, s)

	kept := bytes.Repeat([]byte("committed before the crash\n"), 1000)
	if code, b := request(t, http.MethodPut, base+"run/kept.txt", bytes.NewReader(kept), int64(len(kept))); code != 200 {
		t.Fatalf("PUT kept.txt = %d %s", code, b)
	}

	const size = 64 << 20
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte{'x'}, 1<<20)
		for sent := 0; sent < size; sent += len(chunk) {
			if sent == 8<<20 { // the upload is well under way: crash the cluster
				if err := d.Kill(); err != nil {
					t.Error(err)
				}
			}
			if _, err := pw.Write(chunk); err != nil {
				return // Ferry stopped reading after the failure
			}
		}
		pw.Close()
	}()
	code, body := request(t, http.MethodPut, base+"run/big.bin", pr, size)
	pr.CloseWithError(io.ErrClosedPipe)
	var werr struct {
		ErrorCode string `json:"error_code"`
	}
	_ = json.Unmarshal(body, &werr)
	if code != http.StatusServiceUnavailable || werr.ErrorCode != "TEMPORARILY_UNAVAILABLE" {
		t.Fatalf("PUT while the double dies = %d %s; want 503 TEMPORARILY_UNAVAILABLE", code, body)
	}

	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	// The first request after the restart succeeds, on a connection Ferry
	// opens anew (the old one died with the double).
	if code, b := request(t, http.MethodGet, base+"run/kept.txt", nil, 0); code != 200 || !bytes.Equal(b, kept) {
		t.Fatalf("GET kept.txt after restart = %d (%d bytes); want the committed object", code, len(b))
	}
	if code, b := request(t, http.MethodGet, base+"run/big.bin", nil, 0); code != 404 {
		t.Fatalf("GET of the interrupted upload = %d %.200s; want 404", code, b)
	}
	listURL := strings.Replace(base, "/artifacts/", "/artifacts?path=run", 1)
	if code, b := request(t, http.MethodGet, listURL, nil, 0); code != 200 || strings.Contains(string(b), "big.bin") || strings.Contains(string(b), UploadDir) {
		t.Fatalf("listing after the crash = %d %s; want kept.txt only", code, b)
	}
	again := bytes.Repeat([]byte("y"), 3<<20+5)
	if code, b := request(t, http.MethodPut, base+"run/big.bin", bytes.NewReader(again), int64(len(again))); code != 200 {
		t.Fatalf("PUT after restart = %d %s", code, b)
	}
	if code, b := request(t, http.MethodGet, base+"run/big.bin", nil, 0); code != 200 || !bytes.Equal(b, again) {
		t.Fatalf("GET after restart = %d, %d bytes; want %d", code, len(b), len(again))
	}
}

// TestDoubleRestartedWhileIdle: requests while the double is down fail
// as unavailable, and a restart costs no failed request afterwards, also
// when no request noticed the outage (odd rounds): the dead connection is
// replaced on first use.
func TestDoubleRestartedWhileIdle(t *testing.T) {
	d := startDouble(t)
	s := newStore(t, d.NamenodeAddr)
	ctx := t.Context()
	if err := s.Put(ctx, "a", strings.NewReader("before"), 6); err != nil {
		t.Fatal(err)
	}
	for round := range 4 {
		if err := d.Kill(); err != nil {
			t.Fatal(err)
		}
		if round%2 == 0 {
			if _, err := s.Stat(ctx, "a"); !errors.Is(err, stores.ErrUnavailable) {
				t.Fatalf("Stat while the double is down = %v; want ErrUnavailable", err)
			}
			if err := s.Put(ctx, "b", strings.NewReader("x"), 1); !errors.Is(err, stores.ErrUnavailable) {
				t.Fatalf("Put while the double is down = %v; want ErrUnavailable", err)
			}
		}
		if err := d.Restart(); err != nil {
			t.Fatal(err)
		}
		data := fmt.Sprintf("round %d", round)
		if err := s.Put(ctx, "a", strings.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("round %d: first Put after the restart: %v", round, err)
		}
		rc, _, err := s.Open(ctx, "a", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != data {
			t.Fatalf("round %d: read %q", round, b)
		}
	}
}

// TestNoMultipartNoPresign: HDFS has neither, so the capability routes
// answer upstream's 501 and clients fall back to plain PUT and GET.
func TestNoMultipartNoPresign(t *testing.T) {
	d := startDouble(t)
	base := startProxy(t, newStore(t, d.NamenodeAddr))
	mpu := strings.Replace(base, "/artifacts/", "/mpu/create/", 1) + "run/model.bin"
	req, _ := http.NewRequest(http.MethodPost, mpu, strings.NewReader(`{"path": "model.bin", "num_parts": 3}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(b), "Multipart upload is not supported") {
		t.Errorf("mpu/create = %d %s; want 501 as upstream", resp.StatusCode, b)
	}
	presigned := strings.Replace(base, "/artifacts/", "/presigned/", 1) + "run/model.bin"
	if code, b := request(t, http.MethodGet, presigned, nil, 0); code != http.StatusNotImplemented {
		t.Errorf("presigned download = %d %s; want 501", code, b)
	}
}

// TestListCursorAfterRestart: a listing continued after a namenode
// restart (its kept directory reader died with the connection) starts
// afresh and still returns the right page.
func TestListCursorAfterRestart(t *testing.T) {
	d := startDouble(t)
	s := newStore(t, d.NamenodeAddr)
	ctx := t.Context()
	for i := range 5 {
		if err := s.Put(ctx, fmt.Sprintf("l/%d", i), strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.List(ctx, "l", stores.ListPage{Limit: 2})
	if err != nil || first.NextAfter != "l/1" {
		t.Fatalf("first page = %+v, %v", first, err)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	second, err := s.List(ctx, "l", stores.ListPage{Limit: 2, After: first.NextAfter})
	if err != nil || len(second.Entries) != 2 || second.Entries[0].Key != "l/2" || second.NextAfter != "l/3" {
		t.Fatalf("second page after the restart = %+v, %v", second, err)
	}
	third, err := s.List(ctx, "l", stores.ListPage{Limit: 2, After: second.NextAfter})
	if err != nil || len(third.Entries) != 1 || third.Entries[0].Key != "l/4" || third.NextAfter != "" {
		t.Fatalf("third page = %+v, %v", third, err)
	}
}
