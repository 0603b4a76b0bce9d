package hdfsdouble

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Hadoop RPC v9 framing, as the namenode speaks it:
//
//	connection: "hrpc" | version 9 | service class | auth protocol (0 = none)
//	then packets: uint32 length | varint-delimited messages
//	request:  RpcRequestHeaderProto, RequestHeaderProto, the method's request
//	          (the first packet, call id -3, carries IpcConnectionContextProto)
//	response: RpcResponseHeaderProto, the method's response on success
const (
	rpcVersion          = 9
	authNone            = 0
	connectionContextID = -3
	// maxRPCPacket bounds a request (Hadoop's ipc.maximum.data.length is
	// 128 MiB; the calls the double serves are tiny).
	maxRPCPacket = 16 << 20

	clientProtocol = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
	serviceName    = "hadoop.hdfs.ClientNamenodeProtocol"
)

// Exception classes the namenode answers with; the client maps several of
// them onto os errors by name.
const (
	exFileNotFound     = "java.io.FileNotFoundException"
	exIO               = "java.io.IOException"
	exAlreadyExists    = "org.apache.hadoop.fs.FileAlreadyExistsException"
	exParentNotDir     = "org.apache.hadoop.fs.ParentNotDirectoryException"
	exNotEmpty         = "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException"
	exInvalidPath      = "org.apache.hadoop.fs.InvalidPathException"
	exBeingCreated     = "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException"
	exLeaseExpired     = "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException"
	exNoSuchMethod     = "org.apache.hadoop.ipc.RpcNoSuchMethodException"
	exInvalidRPCHeader = "org.apache.hadoop.ipc.IpcException"
)

// rpcError is a Java exception sent back to the client.
type rpcError struct {
	class, msg string
	code       string // RpcErrorCodeProto name
}

func (e *rpcError) Error() string { return e.class + ": " + e.msg }

func exception(class, format string, args ...any) error {
	return &rpcError{class: class, msg: fmt.Sprintf(format, args...), code: "ERROR_APPLICATION"}
}

// errUnimplemented is the loud answer to every call the double does not
// serve, so a client change that needs a new call fails visibly.
func errUnimplemented(method string) error {
	return &rpcError{class: exNoSuchMethod, code: "ERROR_NO_SUCH_METHOD",
		msg: fmt.Sprintf("hdfsdouble: ClientProtocol.%s is not implemented by Ferry's HDFS test double", method)}
}

// handler serves one ClientProtocol method: req is the decoded request,
// the result is the fields of the response message.
type handler func(req protoreflect.Message) (fields, error)

// serveRPC runs one namenode connection until it fails or closes.
func (nn *namenode) serveRPC(conn net.Conn) error {
	r := bufio.NewReader(conn)
	var preamble [7]byte
	if _, err := io.ReadFull(r, preamble[:]); err != nil {
		return err
	}
	if string(preamble[:4]) != "hrpc" {
		return fmt.Errorf("not a Hadoop RPC connection (preamble %q)", preamble[:4])
	}
	if preamble[4] != rpcVersion {
		_ = writeFatal(conn, -1, "FATAL_VERSION_MISMATCH", fmt.Sprintf("hdfsdouble: RPC version %d; only 9 is implemented", preamble[4]))
		return fmt.Errorf("RPC version %d", preamble[4])
	}
	if preamble[6] != authNone {
		_ = writeFatal(conn, -1, "FATAL_UNAUTHORIZED", "hdfsdouble: SASL (Kerberos/token) authentication is not implemented; connect with simple auth")
		return fmt.Errorf("auth protocol %#x refused", preamble[6])
	}
	svc, err := protoregistry.GlobalFiles.FindDescriptorByName(serviceName)
	if err != nil {
		return err
	}
	methods := svc.(protoreflect.ServiceDescriptor).Methods()
	for {
		msgs, err := readPacket(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		rrh := newMessage("hadoop.common.RpcRequestHeaderProto")
		if len(msgs) == 0 {
			return errors.New("empty RPC packet")
		}
		if err := proto.Unmarshal(msgs[0], rrh.Interface()); err != nil {
			return fmt.Errorf("RpcRequestHeaderProto: %w", err)
		}
		callID := int32(getInt(rrh, "callId"))
		if callID == connectionContextID {
			continue // IpcConnectionContextProto: nothing to answer
		}
		if callID < 0 || len(msgs) != 3 {
			_ = writeFatal(conn, callID, "FATAL_INVALID_RPC_HEADER", fmt.Sprintf("hdfsdouble: call id %d with %d messages is not implemented", callID, len(msgs)))
			return fmt.Errorf("call id %d with %d messages", callID, len(msgs))
		}
		rh := newMessage("hadoop.common.RequestHeaderProto")
		if err := proto.Unmarshal(msgs[1], rh.Interface()); err != nil {
			return fmt.Errorf("RequestHeaderProto: %w", err)
		}
		method := getString(rh, "methodName")
		resp, err := nn.call(methods, getString(rh, "declaringClassProtocolName"), method, msgs[2])
		if err != nil {
			var re *rpcError
			if !errors.As(err, &re) {
				re = &rpcError{class: exIO, msg: err.Error(), code: "ERROR_APPLICATION"}
			}
			nn.log.Debug("hdfsdouble: call failed", "method", method, "exception", re.class, "message", re.msg)
			if err := writeResponse(conn, build("hadoop.common.RpcResponseHeaderProto", fields{
				"callId": uint32(callID), "status": "ERROR", "serverIpcVersionNum": uint32(rpcVersion),
				"exceptionClassName": re.class, "errorMsg": re.msg, "errorDetail": re.code,
			})); err != nil {
				return err
			}
			continue
		}
		if err := writeResponse(conn, build("hadoop.common.RpcResponseHeaderProto", fields{
			"callId": uint32(callID), "status": "SUCCESS", "serverIpcVersionNum": uint32(rpcVersion),
		}), resp); err != nil {
			return err
		}
	}
}

// call decodes and runs one request.
func (nn *namenode) call(methods protoreflect.MethodDescriptors, protocol, method string, body []byte) (proto.Message, error) {
	if protocol != clientProtocol {
		return nil, &rpcError{class: "org.apache.hadoop.ipc.RpcNoSuchProtocolException", code: "ERROR_NO_SUCH_PROTOCOL",
			msg: fmt.Sprintf("hdfsdouble: protocol %q is not implemented (only %s)", protocol, clientProtocol)}
	}
	md := methods.ByName(protoreflect.Name(method))
	h := nn.handlers[method]
	if md == nil || h == nil {
		return nil, errUnimplemented(method)
	}
	req := newMessage(md.Input().FullName())
	if err := proto.Unmarshal(body, req.Interface()); err != nil {
		return nil, exception(exIO, "hdfsdouble: cannot decode %s: %v", md.Input().FullName(), err)
	}
	f, err := h(req)
	if err != nil {
		return nil, err
	}
	return build(md.Output().FullName(), f), nil
}

// readPacket reads one length-prefixed packet and splits it into its
// varint-delimited messages.
func readPacket(r io.Reader) ([][]byte, error) {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return nil, err
	}
	if n > maxRPCPacket {
		return nil, fmt.Errorf("RPC packet of %d bytes exceeds %d", n, maxRPCPacket)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	var msgs [][]byte
	for len(buf) > 0 {
		l, k := binary.Uvarint(buf)
		if k <= 0 || l > uint64(len(buf)-k) {
			return nil, errors.New("malformed varint-delimited message")
		}
		msgs = append(msgs, buf[k:k+int(l)])
		buf = buf[k+int(l):]
	}
	return msgs, nil
}

func writeResponse(w io.Writer, msgs ...proto.Message) error {
	var body []byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			return fmt.Errorf("hdfsdouble: marshal %T: %w", m, err)
		}
		body = binary.AppendUvarint(body, uint64(len(b)))
		body = append(body, b...)
	}
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	_, err := w.Write(append(out, body...))
	return err
}

func writeFatal(w io.Writer, callID int32, code, msg string) error {
	return writeResponse(w, build("hadoop.common.RpcResponseHeaderProto", fields{
		"callId": uint32(callID), "status": "FATAL", "serverIpcVersionNum": uint32(rpcVersion),
		"exceptionClassName": exInvalidRPCHeader, "errorMsg": msg, "errorDetail": code,
	}))
}
