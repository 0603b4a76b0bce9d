package hdfsdouble

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/colinmarc/hdfs/v2"
	"google.golang.org/protobuf/proto"
)

func startDouble(t *testing.T, o Options) (*Server, *hdfs.Client) {
	t.Helper()
	o.Dir = t.TempDir()
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{s.NamenodeAddr()}, User: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

func randomData(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t *testing.T, c *hdfs.Client, name string, data []byte) {
	t.Helper()
	w, err := c.Create(name)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write(%s): %v", name, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close(%s): %v", name, err)
	}
}

// TestClientOperations drives the double with the real client through
// everything the Ferry driver does, with blocks small enough that files
// span several of them.
func TestClientOperations(t *testing.T) {
	_, c := startDouble(t, Options{BlockSize: 1<<20 + 512, ListLimit: 3})
	if err := c.MkdirAll("/d/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	data := randomData(3<<20 + 777)
	writeFile(t, c, "/d/big", data)

	fi, err := c.Stat("/d/big")
	if err != nil || fi.Size() != int64(len(data)) || fi.IsDir() {
		t.Fatalf("Stat = %v, %v", fi, err)
	}
	got, err := c.ReadFile("/d/big")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadFile: %d bytes, %v", len(got), err)
	}
	// Ranged reads, unaligned, across block boundaries.
	f, err := c.Open("/d/big")
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, 511, 513, 1<<20 + 500, 3 << 20, int64(len(data)) - 3} {
		buf := make([]byte, min(70000, int64(len(data))-off))
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
		if !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
			t.Fatalf("ReadAt(%d) returned the wrong bytes", off)
		}
	}
	f.Close()

	// Append: to a block with room, then past it into new blocks.
	more := randomData(1<<20 + 3)
	w, err := c.Append("/d/big")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(more); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err = c.ReadFile("/d/big")
	if want := append(slices.Clip(data), more...); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after append: %d bytes (want %d), %v", len(got), len(want), err)
	}

	// Listing pages through getListing's startAfter (ListLimit 3).
	var names []string
	for i := range 7 {
		name := "/d/f" + string(rune('a'+i))
		writeFile(t, c, name, []byte(name))
		names = append(names, name[3:])
	}
	entries, err := c.ReadDir("/d")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, e := range entries {
		listed = append(listed, e.Name())
	}
	if want := append([]string{"big"}, append(names, "sub")...); !slices.Equal(listed, want) {
		t.Fatalf("ReadDir = %q; want %q", listed, want)
	}

	// rename2 with overwrite replaces the target.
	if err := c.Rename("/d/fa", "/d/fb"); err != nil {
		t.Fatal(err)
	}
	if b, err := c.ReadFile("/d/fb"); err != nil || string(b) != "/d/fa" {
		t.Fatalf("after rename: %q, %v", b, err)
	}
	if _, err := c.Stat("/d/fa"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Stat of the renamed source = %v", err)
	}

	// Errors the client maps onto os errors.
	if _, err := c.Create("/d/fb"); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create of an existing file = %v", err)
	}
	if _, err := c.Create("/d/fb/x"); err == nil {
		t.Fatal("Create below a file succeeded")
	}
	if _, err := c.Create("/d/colon:name"); err == nil || !strings.Contains(err.Error(), "InvalidPathException") {
		t.Fatalf("Create of a name with ':' = %v; want InvalidPathException as HDFS answers", err)
	}
	if err := c.Remove("/d"); err == nil {
		t.Fatal("non-recursive delete of a non-empty directory succeeded")
	}
	if err := c.RemoveAll("/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat("/d"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Stat after RemoveAll = %v", err)
	}
	// Empty files have no blocks.
	writeFile(t, c, "/empty", nil)
	if b, err := c.ReadFile("/empty"); err != nil || len(b) != 0 {
		t.Fatalf("empty file: %q, %v", b, err)
	}
}

// TestRestartKeepsNamespace: what was committed survives a restart.
func TestRestartKeepsNamespace(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{s.NamenodeAddr()}, User: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, c, "/kept", []byte("still here"))
	c.Close()
	nnAddr, dnAddr := s.NamenodeAddr(), s.DatanodeAddr()
	s.Close()

	s, err = Start(Options{Dir: dir, NamenodeAddr: nnAddr, DatanodeAddr: dnAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err = hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{s.NamenodeAddr()}, User: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if b, err := c.ReadFile("/kept"); err != nil || string(b) != "still here" {
		t.Fatalf("after restart: %q, %v", b, err)
	}
}

// rawCall sends one ClientProtocol call over a fresh connection and
// returns the response header.
func rawCall(t *testing.T, addr, method string, req proto.Message) (exception, msg string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte{'h', 'r', 'p', 'c', 9, 0, 0})
	rrh := func(id int32) proto.Message {
		return build("hadoop.common.RpcRequestHeaderProto", fields{"rpcKind": "RPC_PROTOCOL_BUFFER", "rpcOp": "RPC_FINAL_PACKET", "callId": id, "clientId": []byte("0123456789abcdef")})
	}
	if err := writeResponse(conn, rrh(-3), build("hadoop.common.IpcConnectionContextProto", fields{"protocol": clientProtocol, "userInfo": fields{"effectiveUser": "tester"}})); err != nil {
		t.Fatal(err)
	}
	if err := writeResponse(conn, rrh(1), build("hadoop.common.RequestHeaderProto", fields{
		"methodName": method, "declaringClassProtocolName": clientProtocol, "clientProtocolVersion": uint64(1),
	}), req); err != nil {
		t.Fatal(err)
	}
	msgs, err := readPacket(bufio.NewReader(conn))
	if err != nil {
		t.Fatal(err)
	}
	h := newMessage("hadoop.common.RpcResponseHeaderProto")
	if err := proto.Unmarshal(msgs[0], h.Interface()); err != nil {
		t.Fatal(err)
	}
	if getEnum(h, "status") == "SUCCESS" {
		return "", ""
	}
	return getString(h, "exceptionClassName"), getString(h, "errorMsg")
}

// TestRefusesWhatItDoesNotImplement: calls outside the subset fail loudly,
// naming what is missing, instead of pretending to work.
func TestRefusesWhatItDoesNotImplement(t *testing.T) {
	s, c := startDouble(t, Options{})
	for _, tc := range []struct {
		method string
		req    proto.Message
	}{
		{"setPermission", build("hadoop.hdfs.SetPermissionRequestProto", fields{"src": "/x", "permission": fields{"perm": uint32(0o600)}})},
		{"getContentSummary", build("hadoop.hdfs.GetContentSummaryRequestProto", fields{"path": "/"})},
		{"concat", build("hadoop.hdfs.ConcatRequestProto", fields{"trg": "/x"})},
		{"noSuchMethodAtAll", build("hadoop.hdfs.GetFileInfoRequestProto", fields{"src": "/"})},
	} {
		ex, msg := rawCall(t, s.NamenodeAddr(), tc.method, tc.req)
		if ex != exNoSuchMethod || !strings.Contains(msg, tc.method) {
			t.Errorf("%s: exception %q, message %q; want %s naming the method", tc.method, ex, msg, exNoSuchMethod)
		}
	}
	// The client's own unimplemented paths surface the same way.
	if _, err := c.GetContentSummary("/"); err == nil || !strings.Contains(err.Error(), "RpcNoSuchMethodException") {
		t.Errorf("GetContentSummary = %v; want RpcNoSuchMethodException", err)
	}
	if err := c.Chmod("/", 0o700); err == nil {
		t.Error("Chmod succeeded against a double that does not implement setPermission")
	}

	// A data-transfer op other than read/write block.
	conn, err := net.Dial("tcp", s.DatanodeAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	op := build("hadoop.hdfs.OpBlockChecksumProto", fields{"header": fields{"block": fields{"poolId": poolID, "blockId": uint64(1), "generationStamp": uint64(1)}}})
	b, _ := proto.Marshal(op)
	conn.Write(append(binary.AppendUvarint([]byte{0, dataTransferVersion, 0x55}, uint64(len(b))), b...))
	resp, err := readDelimited(bufio.NewReader(conn), "hadoop.hdfs.BlockOpResponseProto")
	if err != nil {
		t.Fatal(err)
	}
	if st, msg := getEnum(resp, "status"), getString(resp, "message"); st != "ERROR_UNSUPPORTED" || !strings.Contains(msg, "0x55") {
		t.Errorf("BLOCK_CHECKSUM op: %s %q; want ERROR_UNSUPPORTED naming the op", st, msg)
	}

	// SASL (Kerberos) connections are refused, not half-served.
	conn2, err := net.Dial("tcp", s.NamenodeAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	conn2.Write([]byte{'h', 'r', 'p', 'c', 9, 0, 0xdf})
	msgs, err := readPacket(bufio.NewReader(conn2))
	if err != nil {
		t.Fatal(err)
	}
	h := newMessage("hadoop.common.RpcResponseHeaderProto")
	proto.Unmarshal(msgs[0], h.Interface())
	if getEnum(h, "status") != "FATAL" || !strings.Contains(getString(h, "errorMsg"), "SASL") {
		t.Errorf("SASL connection: %s %q", getEnum(h, "status"), getString(h, "errorMsg"))
	}
}

// TestDatanodeChecksums: WRITE_BLOCK packets are checked against their
// CRC32C sums; a corrupted packet is refused with ERROR_CHECKSUM and its
// data is not stored.
func TestDatanodeChecksums(t *testing.T) {
	s, _ := startDouble(t, Options{})
	for _, corrupt := range []bool{false, true} {
		conn, err := net.Dial("tcp", s.DatanodeAddr())
		if err != nil {
			t.Fatal(err)
		}
		id := uint64(4242)
		if corrupt {
			id++
		}
		op := build("hadoop.hdfs.OpWriteBlockProto", fields{
			"header": fields{"baseHeader": fields{"block": fields{"poolId": poolID, "blockId": id, "generationStamp": uint64(generationStamp)}}, "clientName": "raw"},
			"stage":  "PIPELINE_SETUP_CREATE", "pipelineSize": uint32(0), "minBytesRcvd": uint64(0), "maxBytesRcvd": uint64(0),
			"latestGenerationStamp": uint64(0),
			"requestedChecksum":     fields{"type": "CHECKSUM_CRC32C", "bytesPerChecksum": uint32(chunkSize)},
		})
		b, _ := proto.Marshal(op)
		conn.Write(append(binary.AppendUvarint([]byte{0, dataTransferVersion, opWriteBlock}, uint64(len(b))), b...))
		r := bufio.NewReader(conn)
		resp, err := readDelimited(r, "hadoop.hdfs.BlockOpResponseProto")
		if err != nil || getEnum(resp, "status") != "SUCCESS" {
			t.Fatalf("WRITE_BLOCK setup: %v %v", resp, err)
		}
		data := randomData(1000)
		sums := make([]byte, 8)
		binary.BigEndian.PutUint32(sums, crc32.Checksum(data[:512], castagnoli))
		binary.BigEndian.PutUint32(sums[4:], crc32.Checksum(data[512:], castagnoli))
		if corrupt {
			data[700] ^= 1
		}
		if err := writeDataPacket(conn, 0, 1, false, sums, data); err != nil {
			t.Fatal(err)
		}
		a, err := readDelimited(r, "hadoop.hdfs.PipelineAckProto")
		if err != nil {
			t.Fatal(err)
		}
		status := a.Get(fieldOf(a, "reply")).List().Get(0).Enum()
		want := "SUCCESS"
		if corrupt {
			want = "ERROR_CHECKSUM"
		}
		if got := string(fieldOf(a, "reply").Enum().Values().ByNumber(status).Name()); got != want {
			t.Errorf("corrupt=%v: ack %s; want %s", corrupt, got, want)
		}
		conn.Close()
		fi, err := os.Stat(s.nn.blockPath(id))
		if err != nil {
			t.Fatal(err)
		}
		if wantSize := int64(1000); corrupt && fi.Size() != 0 || !corrupt && fi.Size() != wantSize {
			t.Errorf("corrupt=%v: block holds %d bytes", corrupt, fi.Size())
		}
	}
}
