package hdfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	hdfs "github.com/colinmarc/hdfs/v2"

	"github.com/ferryml/ferry/stores"
)

// Java exception classes the namenode answers with, by the sentinel they
// mean. The client maps a few of them onto os errors itself (not found,
// exists, permission); the rest arrive as hdfs.Error.
var exceptions = map[string]error{
	"java.io.FileNotFoundException":                                                       stores.ErrNotFound,
	"org.apache.hadoop.fs.ParentNotDirectoryException":                                    stores.ErrNotFound, // like ENOTDIR: nothing can be below a file
	"org.apache.hadoop.fs.FileAlreadyExistsException":                                     stores.ErrExists,
	"org.apache.hadoop.fs.PathIsNotEmptyDirectoryException":                               stores.ErrExists,
	"org.apache.hadoop.security.AccessControlException":                                   stores.ErrPermission,
	"org.apache.hadoop.fs.InvalidPathException":                                           stores.ErrInvalidKey,
	"org.apache.hadoop.HadoopIllegalArgumentException":                                    stores.ErrInvalidKey,
	"org.apache.hadoop.hdfs.protocol.FSLimitException$PathComponentTooLongException":      stores.ErrInvalidKey,
	"org.apache.hadoop.hdfs.protocol.FSLimitException$MaxDirectoryItemsExceededException": stores.ErrTooLarge,
	"org.apache.hadoop.hdfs.protocol.DSQuotaExceededException":                            stores.ErrTooLarge,
	"org.apache.hadoop.hdfs.protocol.NSQuotaExceededException":                            stores.ErrTooLarge,
	"org.apache.hadoop.hdfs.protocol.QuotaByStorageTypeExceededException":                 stores.ErrTooLarge,
	"org.apache.hadoop.ipc.StandbyException":                                              stores.ErrUnavailable,
	"org.apache.hadoop.ipc.RetriableException":                                            stores.ErrUnavailable,
	"org.apache.hadoop.hdfs.server.namenode.SafeModeException":                            stores.ErrUnavailable,
}

// transferFailures are the messages of the client's unexported errors for
// a namenode or datanode that is gone or misbehaving mid-transfer (its
// internal/rpc and internal/transfer packages). The fault tests in this
// package fail if a client upgrade renames them.
var transferFailures = []string{
	"no available namenodes",
	"no available datanodes",
	"invalid response from namenode",
	"invalid response from datanode",
	"unexpected sequence number",
	"Ack error from datanode",
	"invalid ack sequence number",
	"write failed:",
	"read failed:",
	"invalid checksum",
	"replication in progress",
}

// classify converts an error of the HDFS client into a stores sentinel
// (joined with the original, which keeps the details), or returns it.
// It is the driver's only error translation.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{stores.ErrNotFound, stores.ErrExists, stores.ErrPermission, stores.ErrInvalidKey,
		stores.ErrIsDir, stores.ErrInvalidRange, stores.ErrTooLarge, stores.ErrIncomplete, stores.ErrUnavailable,
		stores.ErrUnsupported, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			return err
		}
	}
	var remote hdfs.Error
	if errors.As(err, &remote) {
		if s, ok := exceptions[remote.Exception()]; ok {
			return errors.Join(s, err)
		}
		return err
	}
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return errors.Join(stores.ErrNotFound, err)
	case errors.Is(err, os.ErrExist), errors.Is(err, syscall.ENOTEMPTY):
		return errors.Join(stores.ErrExists, err)
	case errors.Is(err, os.ErrPermission):
		return errors.Join(stores.ErrPermission, err)
	case errors.Is(err, os.ErrInvalid):
		return errors.Join(stores.ErrInvalidKey, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return unavailable(err)
	}
	msg := err.Error()
	for _, m := range transferFailures {
		if strings.Contains(msg, m) {
			return unavailable(err)
		}
	}
	return err
}

// unavailable keeps err's text but not its chain: an io.ErrUnexpectedEOF
// from a namenode or datanode that went away must not read as a client's
// truncated upload (which the wire layer answers with 400).
func unavailable(err error) error {
	return fmt.Errorf("%w: %s", stores.ErrUnavailable, err.Error())
}
