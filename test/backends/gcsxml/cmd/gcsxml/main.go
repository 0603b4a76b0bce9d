// Command gcsxml runs the gcsxml test server (see package gcsxml) outside
// go test, for the Python client tests: in front of the fake-gcs-server at
// -upstream, with one service account whose key file it writes to -key.
// It prints HOST=127.0.0.1:PORT and KEY=path, then serves until SIGTERM;
// GET /_gcsxml/stats answers {"open_uploads":N,"part_bytes":N,"signed_ok":N,"signed_refused":N}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferryml/ferry/test/backends/gcsxml"
)

func main() {
	upstream := flag.String("upstream", "", "fake-gcs-server URL, http://host:port")
	dir := flag.String("dir", "", "directory for parts and the key file")
	flag.Parse()
	if *upstream == "" || *dir == "" {
		log.Fatal("usage: gcsxml -upstream http://host:port -dir DIR")
	}
	s, stop, err := gcsxml.Listen(*upstream, *dir)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	s.RequireAuth.Store(true)
	a, err := s.AddAccount("ferry")
	if err != nil {
		log.Fatal(err)
	}
	key := *dir + "/sa.json"
	if err := a.WriteCredentials(key); err != nil {
		log.Fatal(err)
	}
	s.Stats = func(w http.ResponseWriter) {
		_ = json.NewEncoder(w).Encode(map[string]int64{
			"open_uploads": int64(s.OpenUploads()), "part_bytes": s.PartBytes.Load(),
			"signed_ok": s.SignedOK.Load(), "signed_refused": s.SignedRefused.Load(),
		})
	}
	fmt.Printf("HOST=%s\nKEY=%s\n", s.Host, key)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
