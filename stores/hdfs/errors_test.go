package hdfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/ferryml/ferry/stores"
)

// remoteErr is a namenode exception as the client reports it.
type remoteErr struct{ exception string }

func (e remoteErr) Method() string    { return "create" }
func (e remoteErr) Desc() string      { return "ERROR_APPLICATION" }
func (e remoteErr) Exception() string { return e.exception }
func (e remoteErr) Message() string   { return "details" }
func (e remoteErr) Error() string {
	return "create call failed with ERROR_APPLICATION (" + e.exception + ")"
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{&os.PathError{Op: "open", Path: "/x", Err: os.ErrNotExist}, stores.ErrNotFound},
		{&os.PathError{Op: "create", Path: "/x", Err: os.ErrExist}, stores.ErrExists},
		{&os.PathError{Op: "open", Path: "/x", Err: os.ErrPermission}, stores.ErrPermission},
		{&os.PathError{Op: "create", Path: "/x", Err: remoteErr{"org.apache.hadoop.fs.InvalidPathException"}}, stores.ErrInvalidKey},
		{remoteErr{"org.apache.hadoop.fs.ParentNotDirectoryException"}, stores.ErrNotFound},
		{remoteErr{"org.apache.hadoop.hdfs.protocol.DSQuotaExceededException"}, stores.ErrTooLarge},
		{remoteErr{"org.apache.hadoop.hdfs.server.namenode.SafeModeException"}, stores.ErrUnavailable},
		{remoteErr{"org.apache.hadoop.ipc.StandbyException"}, stores.ErrUnavailable},
		{errors.New("no available namenodes: dial tcp 127.0.0.1:1: connect: connection refused"), stores.ErrUnavailable},
		{fmt.Errorf("write: %w", syscall.EPIPE), stores.ErrUnavailable},
		{&os.PathError{Op: "create", Path: "/x", Err: io.ErrUnexpectedEOF}, stores.ErrUnavailable},
		{errors.New("Ack error from datanode: ERROR_CHECKSUM"), stores.ErrUnavailable},
		{context.Canceled, context.Canceled},
	}
	for _, tt := range tests {
		got := classify(tt.err)
		if !errors.Is(got, tt.want) {
			t.Errorf("classify(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
	// A backend's unexpected EOF must not read as a client's truncated
	// upload, which the wire layer checks for first (400).
	if got := classify(io.ErrUnexpectedEOF); errors.Is(got, io.ErrUnexpectedEOF) {
		t.Errorf("classify(io.ErrUnexpectedEOF) = %v still wraps io.ErrUnexpectedEOF", got)
	}
	// Unknown exceptions stay unclassified (a 500), with their text.
	odd := remoteErr{"org.apache.hadoop.ipc.RpcNoSuchMethodException"}
	if got := classify(odd); got != error(odd) {
		t.Errorf("classify(%v) = %v; want it unchanged", odd, got)
	}
}
