package hdfstest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/weir-stream/weir/proto/hadoop/v1"
)

// Limits on what the decoders accept, so a bad length never makes the server
// allocate gigabytes.
const (
	maxRPCFrame   = 64 << 20 // one Hadoop IPC frame
	maxOpMessage  = 1 << 20  // the varint-delimited op message of a data transfer request
	maxPacketSize = 16 << 20 // one data transfer packet (client packets are 64 KiB)
	maxHeaderSize = 4 << 10  // a PacketHeaderProto is 25 bytes or so
)

// Hadoop IPC constants (org.apache.hadoop.ipc.Server, RpcConstants).
const (
	ipcVersion          = 9
	authNone            = 0
	connectionContextID = -3 // callId of the IpcConnectionContext frame
	clientProtocol      = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
)

// Data transfer constants (DataTransferProtocol).
const (
	dataTransferVersion = 28
	opWriteBlock        = 0x50
	opReadBlock         = 0x51
	heartbeatSeqno      = -1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readPreamble reads the 7 bytes a client sends first on a namenode
// connection: "hrpc", the IPC version, the service class and the auth
// protocol.
func readPreamble(r io.Reader) error {
	var b [7]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("connection preamble: %w", err)
	}
	if string(b[:4]) != "hrpc" {
		return fmt.Errorf("connection preamble: magic %q, want \"hrpc\"", b[:4])
	}
	if b[4] != ipcVersion {
		return fmt.Errorf("connection preamble: IPC version %d, want %d", b[4], ipcVersion)
	}
	if b[6] != authNone {
		return fmt.Errorf("connection preamble: auth protocol %#x: only simple auth (0) is supported, no SASL/Kerberos", b[6])
	}
	return nil
}

// readFrame reads one IPC frame: a big-endian uint32 length and that many
// bytes.
func readFrame(r io.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > maxRPCFrame {
		return nil, fmt.Errorf("rpc frame of %d bytes exceeds the limit of %d", n, maxRPCFrame)
	}
	body, err := readN(r, int64(n))
	if err != nil {
		return nil, fmt.Errorf("rpc frame body (%d bytes): %w", n, noEOF(err))
	}
	return body, nil
}

// splitDelimited splits a frame body into its varint-length-prefixed
// messages.
func splitDelimited(body []byte) ([][]byte, error) {
	var msgs [][]byte
	off := 0
	for off < len(body) {
		n, k := protowire.ConsumeVarint(body[off:])
		if k < 0 {
			return nil, fmt.Errorf("message %d at frame offset %d: bad length varint: %w", len(msgs), off, protowire.ParseError(k))
		}
		off += k
		if n > uint64(len(body)-off) {
			return nil, fmt.Errorf("message %d at frame offset %d: length %d exceeds the %d bytes left", len(msgs), off, n, len(body)-off)
		}
		msgs = append(msgs, body[off:off+int(n)])
		off += int(n)
	}
	return msgs, nil
}

// call is one decoded RPC request.
type call struct {
	header   *pb.RpcRequestHeaderProto
	method   string
	protocol string
	param    []byte // the request message, decoded by the method's handler
}

// decodeConnectionContext decodes the frame that follows the preamble:
// RpcRequestHeaderProto (callId -3) and IpcConnectionContextProto.
func decodeConnectionContext(body []byte) (*pb.IpcConnectionContextProto, error) {
	msgs, err := splitDelimited(body)
	if err != nil {
		return nil, fmt.Errorf("connection context: %w", err)
	}
	if len(msgs) != 2 {
		return nil, fmt.Errorf("connection context: %d messages in the frame, want 2 (RpcRequestHeaderProto, IpcConnectionContextProto)", len(msgs))
	}
	h := &pb.RpcRequestHeaderProto{}
	if err := proto.Unmarshal(msgs[0], h); err != nil {
		return nil, fmt.Errorf("connection context: RpcRequestHeaderProto: %w", err)
	}
	if h.GetCallId() != connectionContextID {
		return nil, fmt.Errorf("connection context: callId %d, want %d", h.GetCallId(), connectionContextID)
	}
	cc := &pb.IpcConnectionContextProto{}
	if err := proto.Unmarshal(msgs[1], cc); err != nil {
		return nil, fmt.Errorf("connection context: IpcConnectionContextProto: %w", err)
	}
	if p := cc.GetProtocol(); p != clientProtocol {
		return nil, fmt.Errorf("connection context: protocol %q, want %q", p, clientProtocol)
	}
	return cc, nil
}

// decodeCall decodes a request frame: RpcRequestHeaderProto,
// RequestHeaderProto and the request message. A frame that carries only the
// RPC header (a close-connection request) has an empty method.
func decodeCall(body []byte) (*call, error) {
	msgs, err := splitDelimited(body)
	if err != nil {
		return nil, fmt.Errorf("rpc request: %w", err)
	}
	if len(msgs) == 0 {
		return nil, errors.New("rpc request: empty frame")
	}
	c := &call{header: &pb.RpcRequestHeaderProto{}}
	if err := proto.Unmarshal(msgs[0], c.header); err != nil {
		return nil, fmt.Errorf("rpc request: RpcRequestHeaderProto: %w", err)
	}
	if c.header.GetRpcOp() == pb.RpcRequestHeaderProto_RPC_CLOSE_CONNECTION {
		return c, nil
	}
	if k := c.header.GetRpcKind(); k != pb.RpcKindProto_RPC_PROTOCOL_BUFFER {
		return c, fmt.Errorf("rpc request %d: rpcKind %v, want RPC_PROTOCOL_BUFFER", c.header.GetCallId(), k)
	}
	if len(msgs) != 3 {
		return c, fmt.Errorf("rpc request %d: %d messages in the frame, want 3 (RpcRequestHeaderProto, RequestHeaderProto, request)", c.header.GetCallId(), len(msgs))
	}
	rh := &pb.RequestHeaderProto{}
	if err := proto.Unmarshal(msgs[1], rh); err != nil {
		return c, fmt.Errorf("rpc request %d: RequestHeaderProto: %w", c.header.GetCallId(), err)
	}
	c.method, c.protocol, c.param = rh.GetMethodName(), rh.GetDeclaringClassProtocolName(), msgs[2]
	return c, nil
}

// appendDelimited appends m with its varint length.
func appendDelimited(b []byte, m proto.Message) ([]byte, error) {
	mb, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	b = protowire.AppendVarint(b, uint64(len(mb)))
	return append(b, mb...), nil
}

// encodeResponse builds a response frame: RpcResponseHeaderProto and, when
// the call succeeded, the response message.
func encodeResponse(h *pb.RpcResponseHeaderProto, resp proto.Message) ([]byte, error) {
	b := make([]byte, 4, 64)
	b, err := appendDelimited(b, h)
	if err != nil {
		return nil, fmt.Errorf("RpcResponseHeaderProto: %w", err)
	}
	if resp != nil {
		if b, err = appendDelimited(b, resp); err != nil {
			return nil, fmt.Errorf("%T: %w", resp, err)
		}
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b, nil
}

// readOp reads a data transfer request: a big-endian uint16 version, the op
// byte, and a varint-delimited op message.
func readOp(r *bufio.Reader) (op byte, msg []byte, err error) {
	var h [3]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, fmt.Errorf("data transfer header: %w", err)
	}
	if v := binary.BigEndian.Uint16(h[:2]); v != dataTransferVersion {
		return 0, nil, fmt.Errorf("data transfer header: version %d, want %d", v, dataTransferVersion)
	}
	msg, err = readDelimited(r, maxOpMessage)
	if err != nil {
		return h[2], nil, fmt.Errorf("data transfer op %#x: %w", h[2], err)
	}
	return h[2], msg, nil
}

// readDelimited reads one varint-length-prefixed message of at most max
// bytes.
func readDelimited(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("message length: %w", noEOF(err))
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("message of %d bytes exceeds the limit of %d", n, max)
	}
	b, err := readN(r, int64(n))
	if err != nil {
		return nil, fmt.Errorf("message body (%d bytes): %w", n, noEOF(err))
	}
	return b, nil
}

// packet is one data transfer packet: its header, the checksums of its
// chunks, and the data.
type packet struct {
	header    *pb.PacketHeaderProto
	checksums []byte
	data      []byte
}

// readPacket reads a packet: a big-endian uint32 payload length (counting
// itself, the checksums and the data), a big-endian uint16 header length,
// the PacketHeaderProto, the checksums and the data.
func readPacket(r io.Reader) (*packet, error) {
	var pre [6]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, err
	}
	payload := binary.BigEndian.Uint32(pre[:4])
	hlen := binary.BigEndian.Uint16(pre[4:])
	if payload < 4 || payload > maxPacketSize {
		return nil, fmt.Errorf("packet: payload length %d outside [4, %d]", payload, maxPacketSize)
	}
	if hlen == 0 || hlen > maxHeaderSize {
		return nil, fmt.Errorf("packet: header length %d outside [1, %d]", hlen, maxHeaderSize)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("packet header (%d bytes): %w", hlen, noEOF(err))
	}
	p := &packet{header: &pb.PacketHeaderProto{}}
	if err := proto.Unmarshal(hb, p.header); err != nil {
		return nil, fmt.Errorf("packet header: %w", err)
	}
	rest := int64(payload) - 4
	dl := int64(p.header.GetDataLen())
	if dl < 0 || dl > rest {
		return nil, fmt.Errorf("packet seqno %d: data length %d outside [0, %d]", p.header.GetSeqno(), dl, rest)
	}
	body, err := readN(r, rest)
	if err != nil {
		return nil, fmt.Errorf("packet seqno %d body (%d bytes): %w", p.header.GetSeqno(), rest, noEOF(err))
	}
	p.checksums, p.data = body[:rest-dl], body[rest-dl:]
	return p, nil
}

// verify checks the packet's checksums: one per bytesPerChecksum chunk of
// the data, big-endian.
func (p *packet) verify(kind pb.ChecksumTypeProto, bytesPerChecksum int) error {
	var tab *crc32.Table
	switch kind {
	case pb.ChecksumTypeProto_CHECKSUM_NULL:
		if len(p.checksums) != 0 {
			return fmt.Errorf("packet seqno %d: %d checksum bytes with CHECKSUM_NULL", p.header.GetSeqno(), len(p.checksums))
		}
		return nil
	case pb.ChecksumTypeProto_CHECKSUM_CRC32:
		tab = crc32.IEEETable
	case pb.ChecksumTypeProto_CHECKSUM_CRC32C:
		tab = castagnoli
	default:
		return fmt.Errorf("packet seqno %d: unsupported checksum type %v", p.header.GetSeqno(), kind)
	}
	if bytesPerChecksum <= 0 {
		return fmt.Errorf("packet seqno %d: bytesPerChecksum %d", p.header.GetSeqno(), bytesPerChecksum)
	}
	chunks := (len(p.data) + bytesPerChecksum - 1) / bytesPerChecksum
	if len(p.checksums) != 4*chunks {
		return fmt.Errorf("packet seqno %d: %d checksum bytes for %d data bytes, want %d", p.header.GetSeqno(), len(p.checksums), len(p.data), 4*chunks)
	}
	for i := range chunks {
		chunk := p.data[i*bytesPerChecksum : min((i+1)*bytesPerChecksum, len(p.data))]
		want := binary.BigEndian.Uint32(p.checksums[4*i:])
		if got := crc32.Checksum(chunk, tab); got != want {
			return fmt.Errorf("packet seqno %d: chunk %d at block offset %d: checksum %08x, data has %08x",
				p.header.GetSeqno(), i, p.header.GetOffsetInBlock()+int64(i*bytesPerChecksum), want, got)
		}
	}
	return nil
}

// appendPacket encodes a packet with CRC32C checksums over
// bytesPerChecksum chunks of data.
func appendPacket(b []byte, offset, seqno int64, last bool, data []byte, bytesPerChecksum int) ([]byte, error) {
	hb, err := proto.Marshal(&pb.PacketHeaderProto{
		OffsetInBlock:     proto.Int64(offset),
		Seqno:             proto.Int64(seqno),
		LastPacketInBlock: proto.Bool(last),
		DataLen:           proto.Int32(int32(len(data))),
	})
	if err != nil {
		return nil, err
	}
	chunks := (len(data) + bytesPerChecksum - 1) / bytesPerChecksum
	b = binary.BigEndian.AppendUint32(b, uint32(4+4*chunks+len(data)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(hb)))
	b = append(b, hb...)
	for i := range chunks {
		b = binary.BigEndian.AppendUint32(b, crc32.Checksum(data[i*bytesPerChecksum:min((i+1)*bytesPerChecksum, len(data))], castagnoli))
	}
	return append(b, data...), nil
}

// readN reads exactly n bytes. Large reads grow their buffer as the bytes
// arrive, so a lying length costs no more memory than the bytes sent.
func readN(r io.Reader, n int64) ([]byte, error) {
	if n <= 64<<10 {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var buf bytes.Buffer
	if m, err := io.CopyN(&buf, r, n); err != nil {
		if err == io.EOF && m > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
