package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestCrashLeavesNoTempFiles: kill -9 in the middle of an upload leaves
// its temporary file; the next start removes it once it is older than
// --temp-file-max-age (and not before: a young one may be another server's
// live upload on a shared folder), logs how many it removed, and leaves
// committed objects alone. The upload stalls instead of being large so the
// test controls exactly when the server dies with the file open.
func TestCrashLeavesNoTempFiles(t *testing.T) {
	t.Parallel()
	f1 := startFerry(t)
	kept := randomBytes(3 << 20)
	mustPut(t, f1.Art("/api", "/artifacts/0/run/artifacts/kept.bin"), kept)

	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		req, err := http.NewRequest(http.MethodPut, f1.Art("/api", "/artifacts/0/crashed/artifacts/big.bin"), pr)
		if err != nil {
			return
		}
		req.ContentLength = 1 << 30
		if resp, err := bigClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	// 3 MiB arrive (past the 1 MiB copy buffer, so the file has data), then
	// the client stalls.
	if _, err := pw.Write(randomBytes(3 << 20)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the upload's temp file has data", func() (bool, string) {
		tmp := tempFiles(t, f1.Dest)
		if len(tmp) != 1 {
			return false, fmt.Sprint("temp files: ", tmp)
		}
		fi, err := os.Stat(tmp[0])
		return err == nil && fi.Size() > 0, "empty"
	})
	f1.kill()
	pw.CloseWithError(io.ErrClosedPipe)
	crashed := time.Now()

	sweepLog := func(f *ferry) logLine {
		var l logLine
		eventually(t, 20*time.Second, "the sweep's log line", func() (bool, string) {
			ls := f.FindLogs(func(l logLine) bool { return l.Msg() == "stale uploads removed" })
			if len(ls) == 0 {
				return false, "not logged yet"
			}
			l = ls[0]
			return true, ""
		})
		return l
	}

	// A start with the default age (24 h) keeps the young file.
	f2 := startFerry(t, "--artifacts-destination", f1.Dest)
	if l := sweepLog(f2); l["removed"] != float64(0) || l.Str("older_than") != "24h0m0s" {
		t.Errorf("default sweep logged %v, want removed 0 older than 24h0m0s", l)
	}
	if tmp := tempFiles(t, f1.Dest); len(tmp) != 1 {
		t.Fatalf("a young temp file was removed (it may be a live upload): %v", tmp)
	}
	if code := f2.Stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	// Once it is older than --temp-file-max-age, the next start removes it.
	time.Sleep(time.Until(crashed.Add(1100 * time.Millisecond)))
	f3 := startFerry(t, "--artifacts-destination", f1.Dest, "--temp-file-max-age", "1s")
	if l := sweepLog(f3); l["removed"] != float64(1) {
		t.Errorf("sweep logged %v, want removed 1", l)
	}
	if tmp := tempFiles(t, f1.Dest); len(tmp) != 0 {
		t.Fatalf("temp files after the sweep: %v", tmp)
	}
	if got := treeOf(t, f1.Dest); len(got) != 5 { // . 0 0/run 0/run/artifacts 0/run/artifacts/kept.bin
		t.Errorf("destination after the sweep: %v, want only the committed object", got)
	}
	r := get(t, f3.Art("/api", "/artifacts/0/run/artifacts/kept.bin"))
	if r.Status != 200 || !bytes.Equal(r.Body, kept) {
		t.Fatalf("committed object after crash and sweep: %d, %d bytes", r.Status, len(r.Body))
	}
}
