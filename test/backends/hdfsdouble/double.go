// Package hdfsdouble is Ferry's wire-level test double of HDFS: a namenode
// speaking Hadoop RPC v9 (the ClientNamenodeProtocol calls that
// github.com/colinmarc/hdfs/v2 makes to create, append, read, list, stat,
// rename and delete) and a single datanode speaking the data-transfer
// protocol (WRITE_BLOCK and READ_BLOCK with CRC32C packets), both on
// loopback, with the namespace and the blocks in a directory on disk so a
// restarted double keeps what was committed.
//
// No Hadoop can run on the machines Ferry is tested on, so the HDFS driver
// is tested against this double, not against Hadoop. It implements the
// subset the driver needs and nothing more: every other RPC is answered
// with a RpcNoSuchMethodException naming the method, every other
// data-transfer op with ERROR_UNSUPPORTED, SASL/Kerberos connections are
// refused, there is no replication, no pipeline recovery, no leases that
// expire, no permissions, quotas, snapshots or encryption.
//
// Start runs it in-process; cmd/hdfsdouble runs it as a separate process
// so tests can kill it mid-transfer (see Process).
package hdfsdouble

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Options configure a double. Zero values take the defaults.
type Options struct {
	// Dir holds the namespace and the blocks (required).
	Dir string
	// NamenodeAddr and DatanodeAddr are the listen addresses (default
	// 127.0.0.1 on a free port). A restarted double reuses the old ones.
	NamenodeAddr, DatanodeAddr string
	// BlockSize is the block size handed to clients (default 128 MiB).
	BlockSize int64
	// ListLimit is the page size of getListing (default 1000, as dfs.ls.limit).
	ListLimit int
	// BlockDeleteDelay is how long deleted blocks stay readable (default 3 s).
	BlockDeleteDelay time.Duration
	// Logger receives connection errors (default: discarded).
	Logger *slog.Logger
}

// Server is a running double.
type Server struct {
	nnLn, dnLn net.Listener
	nn         *namenode
	dn         *datanode
	log        *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Start starts a double serving o.Dir.
func Start(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("hdfsdouble: Options.Dir is required")
	}
	if o.NamenodeAddr == "" {
		o.NamenodeAddr = "127.0.0.1:0"
	}
	if o.DatanodeAddr == "" {
		o.DatanodeAddr = "127.0.0.1:0"
	}
	if o.BlockSize <= 0 {
		o.BlockSize = 128 << 20
	}
	if o.ListLimit <= 0 {
		o.ListLimit = 1000
	}
	if o.BlockDeleteDelay <= 0 {
		o.BlockDeleteDelay = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dnLn, err := net.Listen("tcp", o.DatanodeAddr)
	if err != nil {
		return nil, fmt.Errorf("hdfsdouble: datanode: %w", err)
	}
	nnLn, err := net.Listen("tcp", o.NamenodeAddr)
	if err != nil {
		dnLn.Close()
		return nil, fmt.Errorf("hdfsdouble: namenode: %w", err)
	}
	host, port, _ := net.SplitHostPort(dnLn.Addr().String())
	p, _ := strconv.Atoi(port)
	nn, err := newNamenode(o.Dir, &datanodeInfo{host: host, port: p}, o)
	if err != nil {
		nnLn.Close()
		dnLn.Close()
		return nil, err
	}
	s := &Server{nnLn: nnLn, dnLn: dnLn, nn: nn, dn: &datanode{nn: nn}, log: o.Logger, conns: map[net.Conn]struct{}{}}
	s.wg.Add(2)
	go s.accept(nnLn, "namenode", nn.serveRPC)
	go s.accept(dnLn, "datanode", s.dn.serve)
	return s, nil
}

// NamenodeAddr is the namenode's host:port.
func (s *Server) NamenodeAddr() string { return s.nnLn.Addr().String() }

// DatanodeAddr is the datanode's host:port.
func (s *Server) DatanodeAddr() string { return s.dnLn.Addr().String() }

// Close stops listening and drops every open connection at once, as a
// crash would; it waits for the handlers to return.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := errors.Join(s.nnLn.Close(), s.dnLn.Close())
	s.wg.Wait()
	return err
}

func (s *Server) accept(ln net.Listener, role string, serve func(net.Conn) error) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			if err := serve(conn); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("hdfsdouble: connection failed", "role", role, "remote", conn.RemoteAddr().String(), "err", err)
			}
			conn.Close()
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
		}()
	}
}
