package hdfsdouble

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The datanode data-transfer protocol, as far as the double speaks it:
//
//	request:  uint16 version (28) | uint8 op | varint-delimited Op*Proto
//	answer:   varint-delimited BlockOpResponseProto
//	packets:  uint32 payload length (4 + checksums + data) | uint16 header
//	          length | PacketHeaderProto | CRCs of each chunk | data
//	write:    the client sends packets; each is answered with a
//	          varint-delimited PipelineAckProto; the last one is empty and
//	          has lastPacketInBlock set.
//	read:     the datanode sends packets from the chunk boundary at or
//	          before the offset, then an empty last packet.
const (
	dataTransferVersion = 28
	opWriteBlock        = 0x50
	opReadBlock         = 0x51
	chunkSize           = 512
	readPacketSize      = 64 << 10
	// maxPacket bounds one packet from a client (HDFS clients send 64 KiB).
	maxPacket = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type datanode struct {
	nn *namenode
}

// serve runs one data-transfer connection (one operation).
func (dn *datanode) serve(conn net.Conn) error {
	r := bufio.NewReaderSize(conn, 128<<10)
	var head [3]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return err
	}
	if v := binary.BigEndian.Uint16(head[:2]); v != dataTransferVersion {
		_ = dn.respond(conn, "ERROR_UNSUPPORTED", fmt.Sprintf("hdfsdouble: data transfer version %d; only %d is implemented", v, dataTransferVersion), nil)
		return fmt.Errorf("data transfer version %d", v)
	}
	switch head[2] {
	case opWriteBlock:
		op, err := readDelimited(r, "hadoop.hdfs.OpWriteBlockProto")
		if err != nil {
			return err
		}
		return dn.writeBlock(conn, r, op)
	case opReadBlock:
		op, err := readDelimited(r, "hadoop.hdfs.OpReadBlockProto")
		if err != nil {
			return err
		}
		return dn.readBlock(conn, op)
	}
	msg := fmt.Sprintf("hdfsdouble: data transfer op %#x is not implemented (only WRITE_BLOCK 0x50 and READ_BLOCK 0x51)", head[2])
	_ = dn.respond(conn, "ERROR_UNSUPPORTED", msg, nil)
	return errors.New(msg)
}

func (dn *datanode) respond(w io.Writer, status, msg string, extra fields) error {
	f := fields{"status": status}
	if msg != "" {
		f["message"] = msg
	}
	for k, v := range extra {
		f[k] = v
	}
	return writeDelimited(w, build("hadoop.hdfs.BlockOpResponseProto", f))
}

func (dn *datanode) writeBlock(conn net.Conn, r *bufio.Reader, op protoreflect.Message) error {
	blk, ok := sub(op, "header.baseHeader.block")
	if !ok {
		return dn.respond(conn, "ERROR_INVALID", "hdfsdouble: WRITE_BLOCK without a block", nil)
	}
	if n := op.Get(fieldOf(op, "targets")).List().Len(); n > 0 {
		return dn.respond(conn, "ERROR_UNSUPPORTED", fmt.Sprintf("hdfsdouble: pipelines of more than one datanode (%d targets) are not implemented", n), nil)
	}
	var table *crc32.Table
	bytesPerChecksum := chunkSize
	if sum, ok := sub(op, "requestedChecksum"); ok {
		switch getEnum(sum, "type") {
		case "CHECKSUM_CRC32C":
			table = castagnoli
		case "CHECKSUM_CRC32":
			table = crc32.IEEETable
		case "CHECKSUM_NULL":
		default:
			return dn.respond(conn, "ERROR_UNSUPPORTED", "hdfsdouble: checksum type "+getEnum(sum, "type")+" is not implemented", nil)
		}
		bytesPerChecksum = int(getUint(sum, "bytesPerChecksum"))
		if bytesPerChecksum <= 0 || bytesPerChecksum > maxPacket {
			return dn.respond(conn, "ERROR_INVALID", fmt.Sprintf("hdfsdouble: bytesPerChecksum %d", bytesPerChecksum), nil)
		}
	}
	id := getUint(blk, "blockId")
	var f *os.File
	var err error
	switch stage := getEnum(op, "stage"); stage {
	case "PIPELINE_SETUP_CREATE":
		f, err = os.OpenFile(dn.nn.blockPath(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	case "PIPELINE_SETUP_APPEND":
		f, err = os.OpenFile(dn.nn.blockPath(id), os.O_WRONLY, 0o644)
	default:
		return dn.respond(conn, "ERROR_UNSUPPORTED", "hdfsdouble: block construction stage "+stage+" is not implemented", nil)
	}
	if err != nil {
		return dn.respond(conn, "ERROR", fmt.Sprintf("hdfsdouble: block %d: %v", id, err), nil)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if err := dn.respond(conn, "SUCCESS", "", fields{"firstBadLink": ""}); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		hdr, payload, err := readPacket2(r, &buf)
		if err != nil {
			return fmt.Errorf("block %d: %w", id, err)
		}
		seqno := getInt(hdr, "seqno")
		dataLen := int(getInt(hdr, "dataLen"))
		if dataLen < 0 || dataLen > len(payload) {
			return fmt.Errorf("block %d: packet data length %d of a %d-byte payload", id, dataLen, len(payload))
		}
		sums, data := payload[:len(payload)-dataLen], payload[len(payload)-dataLen:]
		if dataLen > 0 {
			if off := getInt(hdr, "offsetInBlock"); off != size {
				_ = ack(conn, seqno, "ERROR")
				return fmt.Errorf("block %d: packet at offset %d, block holds %d bytes", id, off, size)
			}
			if table != nil && !checksumsMatch(data, sums, bytesPerChecksum, table) {
				_ = ack(conn, seqno, "ERROR_CHECKSUM")
				return fmt.Errorf("block %d: checksum mismatch in packet %d", id, seqno)
			}
			if _, err := f.Write(data); err != nil {
				_ = ack(conn, seqno, "ERROR")
				return err
			}
			size += int64(dataLen)
		}
		if err := ack(conn, seqno, "SUCCESS"); err != nil {
			return err
		}
		if get(hdr, "lastPacketInBlock").Bool() {
			return f.Close()
		}
	}
}

func checksumsMatch(data, sums []byte, per int, table *crc32.Table) bool {
	chunks := (len(data) + per - 1) / per
	if len(sums) != 4*chunks {
		return false
	}
	for i := range chunks {
		chunk := data[i*per : min((i+1)*per, len(data))]
		if crc32.Checksum(chunk, table) != binary.BigEndian.Uint32(sums[4*i:]) {
			return false
		}
	}
	return true
}

func ack(w io.Writer, seqno int64, status string) error {
	return writeDelimited(w, build("hadoop.hdfs.PipelineAckProto", fields{
		"seqno": seqno, "reply": []string{status}, "downstreamAckTimeNanos": uint64(0),
	}))
}

// readPacket2 reads one data packet into *buf (grown as needed) and
// returns its header and payload (checksums then data).
func readPacket2(r io.Reader, buf *[]byte) (protoreflect.Message, []byte, error) {
	var pre [6]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, nil, err
	}
	payloadLen := int(binary.BigEndian.Uint32(pre[:4]))
	headerLen := int(binary.BigEndian.Uint16(pre[4:]))
	if payloadLen < 4 || payloadLen > maxPacket {
		return nil, nil, fmt.Errorf("packet payload length %d", payloadLen)
	}
	need := headerLen + payloadLen - 4
	if cap(*buf) < need {
		*buf = make([]byte, need)
	}
	b := (*buf)[:need]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, nil, err
	}
	hdr := newMessage("hadoop.hdfs.PacketHeaderProto")
	if err := proto.Unmarshal(b[:headerLen], hdr.Interface()); err != nil {
		return nil, nil, fmt.Errorf("packet header: %w", err)
	}
	return hdr, b[headerLen:], nil
}

func (dn *datanode) readBlock(conn net.Conn, op protoreflect.Message) error {
	blk, ok := sub(op, "header.baseHeader.block")
	if !ok {
		return dn.respond(conn, "ERROR_INVALID", "hdfsdouble: READ_BLOCK without a block", nil)
	}
	id := getUint(blk, "blockId")
	f, err := os.Open(dn.nn.blockPath(id))
	if err != nil {
		return dn.respond(conn, "ERROR", fmt.Sprintf("hdfsdouble: block %d: %v", id, err), nil)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	offset, length := int64(getUint(op, "offset")), int64(getUint(op, "len"))
	if offset > fi.Size() {
		return dn.respond(conn, "ERROR_INVALID", fmt.Sprintf("hdfsdouble: offset %d past the end of block %d (%d bytes)", offset, id, fi.Size()), nil)
	}
	end := min(fi.Size(), offset+length)
	start := offset - offset%chunkSize
	if err := dn.respond(conn, "SUCCESS", "", fields{"readOpChecksumInfo": fields{
		"checksum": fields{"type": "CHECKSUM_CRC32C", "bytesPerChecksum": uint32(chunkSize)}, "chunkOffset": uint64(start),
	}}); err != nil {
		return err
	}
	w := bufio.NewWriterSize(conn, readPacketSize+16<<10)
	data := make([]byte, readPacketSize)
	sums := make([]byte, 4*readPacketSize/chunkSize)
	var seqno int64
	for pos := start; ; seqno++ {
		n := int(min(int64(readPacketSize), end-pos))
		if _, err := f.ReadAt(data[:n], pos); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
			return err
		}
		chunks := (n + chunkSize - 1) / chunkSize
		for i := range chunks {
			binary.BigEndian.PutUint32(sums[4*i:], crc32.Checksum(data[i*chunkSize:min((i+1)*chunkSize, n)], castagnoli))
		}
		if err := writeDataPacket(w, pos, seqno, n == 0, sums[:4*chunks], data[:n]); err != nil {
			return err
		}
		if n == 0 {
			return w.Flush()
		}
		pos += int64(n)
	}
}

func writeDataPacket(w io.Writer, offset, seqno int64, last bool, sums, data []byte) error {
	hdr, err := proto.Marshal(build("hadoop.hdfs.PacketHeaderProto", fields{
		"offsetInBlock": offset, "seqno": seqno, "lastPacketInBlock": last, "dataLen": int32(len(data)),
	}))
	if err != nil {
		return err
	}
	var pre [6]byte
	binary.BigEndian.PutUint32(pre[:4], uint32(4+len(sums)+len(data)))
	binary.BigEndian.PutUint16(pre[4:], uint16(len(hdr)))
	for _, b := range [][]byte{pre[:], hdr, sums, data} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func readDelimited(r *bufio.Reader, name protoreflect.FullName) (protoreflect.Message, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxRPCPacket {
		return nil, fmt.Errorf("%s of %d bytes", name, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	m := newMessage(name)
	if err := proto.Unmarshal(b, m.Interface()); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

func writeDelimited(w io.Writer, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("hdfsdouble: marshal %T: %w", m, err)
	}
	_, err = w.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	return err
}
