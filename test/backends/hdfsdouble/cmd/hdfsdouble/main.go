// Command hdfsdouble runs Ferry's HDFS test double (package hdfsdouble)
// as its own process, so tests can kill it mid-transfer and start it
// again on the same directory and ports. It prints one line,
// "hdfsdouble namenode=HOST:PORT datanode=HOST:PORT", once it listens,
// and runs until SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferryml/ferry/test/backends/hdfsdouble"
)

func main() {
	var o hdfsdouble.Options
	flag.StringVar(&o.Dir, "dir", "", "directory holding the namespace and blocks (required)")
	flag.StringVar(&o.NamenodeAddr, "namenode", "127.0.0.1:0", "namenode listen address")
	flag.StringVar(&o.DatanodeAddr, "datanode", "127.0.0.1:0", "datanode listen address")
	flag.Int64Var(&o.BlockSize, "block-size", 128<<20, "block size handed to clients")
	flag.IntVar(&o.ListLimit, "list-limit", 1000, "getListing page size")
	verbose := flag.Bool("v", false, "log failed connections and calls to stderr")
	flag.Parse()
	if o.Dir == "" {
		fmt.Fprintln(os.Stderr, "hdfsdouble: -dir is required")
		os.Exit(2)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	s, err := hdfsdouble.Start(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("hdfsdouble namenode=%s datanode=%s\n", s.NamenodeAddr(), s.DatanodeAddr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	s.Close()
}
