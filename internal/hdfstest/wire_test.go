package hdfstest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/weir-stream/weir/proto/hadoop/v1"
)

// frame builds an IPC frame of varint-delimited messages, as the client
// does.
func frame(t testing.TB, msgs ...proto.Message) []byte {
	t.Helper()
	b := make([]byte, 4)
	for _, m := range msgs {
		var err error
		if b, err = appendDelimited(b, m); err != nil {
			t.Fatal(err)
		}
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func rpcHeader(id int32) *pb.RpcRequestHeaderProto {
	return &pb.RpcRequestHeaderProto{RpcKind: pb.RpcKindProto_RPC_PROTOCOL_BUFFER.Enum(),
		RpcOp: pb.RpcRequestHeaderProto_RPC_FINAL_PACKET.Enum(), CallId: proto.Int32(id), ClientId: []byte("0123456789abcdef")}
}

func reqHeader(method string) *pb.RequestHeaderProto {
	return &pb.RequestHeaderProto{MethodName: proto.String(method), DeclaringClassProtocolName: proto.String(clientProtocol),
		ClientProtocolVersion: proto.Uint64(1)}
}

func connContext(user string) *pb.IpcConnectionContextProto {
	return &pb.IpcConnectionContextProto{UserInfo: &pb.UserInformationProto{EffectiveUser: proto.String(user)},
		Protocol: proto.String(clientProtocol)}
}

var preamble = []byte{'h', 'r', 'p', 'c', ipcVersion, 0, authNone}

func TestDecodeCall(t *testing.T) {
	f := frame(t, rpcHeader(7), reqHeader("getFileInfo"), &pb.GetFileInfoRequestProto{Src: proto.String("/a")})
	body, err := readFrame(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeCall(body)
	if err != nil {
		t.Fatal(err)
	}
	var req pb.GetFileInfoRequestProto
	if err := proto.Unmarshal(c.param, &req); err != nil {
		t.Fatal(err)
	}
	if c.header.GetCallId() != 7 || c.method != "getFileInfo" || c.protocol != clientProtocol || req.GetSrc() != "/a" {
		t.Fatalf("decoded %+v, %v", c, &req)
	}
}

func TestWireErrors(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, maxRPCFrame+1)
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"bad magic", func() error { return readPreamble(bytes.NewReader([]byte("HTTP/1.1"))) }, `magic "HTTP"`},
		{"old version", func() error { return readPreamble(bytes.NewReader([]byte{'h', 'r', 'p', 'c', 7, 0, 0})) }, "IPC version 7, want 9"},
		{"sasl", func() error { return readPreamble(bytes.NewReader([]byte{'h', 'r', 'p', 'c', 9, 0, 0xdf})) }, "no SASL/Kerberos"},
		{"huge frame", func() error { _, err := readFrame(bytes.NewReader(huge)); return err }, "exceeds the limit"},
		{"short frame", func() error { _, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 9, 1})); return err }, "rpc frame body (9 bytes): unexpected EOF"},
		{"bad varint", func() error { _, err := decodeCall([]byte{0xff, 0xff}); return err }, "message 0 at frame offset 0: bad length varint"},
		{"length past end", func() error { _, err := decodeCall([]byte{5, 1}); return err }, "length 5 exceeds the 1 bytes left"},
		{"missing request", func() error {
			b, _ := appendDelimited(nil, rpcHeader(1))
			_, err := decodeCall(b)
			return err
		}, "1 messages in the frame, want 3"},
		{"context callId", func() error {
			b, _ := appendDelimited(nil, rpcHeader(1))
			b, _ = appendDelimited(b, connContext("u"))
			_, err := decodeConnectionContext(b)
			return err
		}, "callId 1, want -3"},
		{"packet length", func() error {
			_, err := readPacket(bytes.NewReader([]byte{0, 0, 0, 2, 0, 1}))
			return err
		}, "payload length 2 outside"},
		{"op version", func() error {
			_, _, err := readOp(bufio.NewReader(bytes.NewReader([]byte{0, 27, opWriteBlock, 0})))
			return err
		}, "version 27, want 28"},
		{"op too long", func() error {
			_, _, err := readOp(bufio.NewReader(bytes.NewReader(protowire.AppendVarint([]byte{0, 28, opReadBlock}, maxOpMessage+1))))
			return err
		}, "exceeds the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestPacketRoundTripAndChecksums(t *testing.T) {
	data := bytes.Repeat([]byte("weir"), 300) // 1200 bytes: 3 chunks, the last partial
	b, err := appendPacket(nil, 1024, 5, false, data, 512)
	if err != nil {
		t.Fatal(err)
	}
	p, err := readPacket(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.verify(pb.ChecksumTypeProto_CHECKSUM_CRC32C, 512); err != nil {
		t.Fatal(err)
	}
	if p.header.GetSeqno() != 5 || p.header.GetOffsetInBlock() != 1024 || !bytes.Equal(p.data, data) {
		t.Fatalf("decoded %v, %d bytes", p.header, len(p.data))
	}
	b[len(b)-1] ^= 1
	p, err = readPacket(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	err = p.verify(pb.ChecksumTypeProto_CHECKSUM_CRC32C, 512)
	if err == nil || !strings.Contains(err.Error(), "packet seqno 5: chunk 2 at block offset 2048: checksum") {
		t.Fatalf("verify of a flipped byte: %v", err)
	}
	if err := p.verify(pb.ChecksumTypeProto_CHECKSUM_CRC32C, 256); err == nil || !strings.Contains(err.Error(), "12 checksum bytes for 1200 data bytes, want 20") {
		t.Fatalf("verify with the wrong chunk size: %v", err)
	}
}

// FuzzRPCFrame feeds the namenode's decoders (preamble, frame, connection
// context, call, and the request message of the named method) arbitrary
// bytes: they must return errors, never panic or allocate beyond their
// limits.
func FuzzRPCFrame(f *testing.F) {
	f.Add(append(append(append([]byte(nil), preamble...), frame(f, rpcHeader(connectionContextID), connContext("weir"))...),
		frame(f, rpcHeader(0), reqHeader("getFileInfo"), &pb.GetFileInfoRequestProto{Src: proto.String("/")})...))
	f.Add(frame(f, rpcHeader(1), reqHeader("create"), &pb.CreateRequestProto{Src: proto.String("/a"),
		Masked: &pb.FsPermissionProto{Perm: proto.Uint32(0o644)}, ClientName: proto.String("c"), CreateFlag: proto.Uint32(1),
		CreateParent: proto.Bool(false), Replication: proto.Uint32(1), BlockSize: proto.Uint64(1 << 20)}))
	f.Add(frame(f, rpcHeader(2), reqHeader("rename2"), &pb.Rename2RequestProto{Src: proto.String("/a"), Dst: proto.String("/b"), OverwriteDest: proto.Bool(true)}))
	f.Add(frame(f, rpcHeader(3), reqHeader("getListing"), &pb.GetListingRequestProto{Src: proto.String("/"), StartAfter: []byte{}, NeedLocation: proto.Bool(false)}))
	f.Add([]byte{0, 0, 0, 2, 0xff, 0xff})
	srv, err := Start(Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		if bytes.HasPrefix(data, []byte("hrpc")) {
			if readPreamble(r) != nil {
				return
			}
			body, err := readFrame(r)
			if err != nil {
				return
			}
			if _, err := decodeConnectionContext(body); err != nil {
				return
			}
		}
		for {
			body, err := readFrame(r)
			if err != nil {
				if len(body) != 0 {
					t.Fatal("a failed readFrame returned bytes")
				}
				return
			}
			c, err := decodeCall(body)
			if err != nil || c.method == "" {
				continue
			}
			resp, rerr := srv.dispatch("fuzz", c)
			if rerr == nil {
				if _, err := encodeResponse(&pb.RpcResponseHeaderProto{CallId: proto.Uint32(1), Status: pb.RpcResponseHeaderProto_SUCCESS.Enum()}, resp); err != nil {
					t.Fatalf("%s: the server built an invalid response: %v", c.method, err)
				}
			}
		}
	})
}

// FuzzPacket feeds the datanode's packet decoder and checksum check
// arbitrary bytes; a packet that passes re-encodes to the same bytes.
func FuzzPacket(f *testing.F) {
	for _, n := range []int{0, 1, 511, 512, 513, 4096} {
		b, err := appendPacket(nil, int64(n), int64(n), n == 0, bytes.Repeat([]byte{byte(n)}, n), 512)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 0, 0, 4, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := readPacket(bytes.NewReader(data))
		if err != nil {
			return
		}
		if p.verify(pb.ChecksumTypeProto_CHECKSUM_CRC32C, 512) != nil {
			return
		}
		h := p.header
		b, err := appendPacket(nil, h.GetOffsetInBlock(), h.GetSeqno(), h.GetLastPacketInBlock(), p.data, 512)
		if err != nil {
			t.Fatal(err)
		}
		q, err := readPacket(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("a re-encoded packet does not decode: %v", err)
		}
		if !bytes.Equal(q.data, p.data) || !bytes.Equal(q.checksums, p.checksums) || q.header.GetSeqno() != h.GetSeqno() {
			t.Fatal("re-encoding changed the packet")
		}
	})
}

// FuzzDataTransferOp feeds the datanode's op decoder arbitrary bytes, and
// the op message to the decoder of its type.
func FuzzDataTransferOp(f *testing.F) {
	eb := &pb.ExtendedBlockProto{PoolId: proto.String(blockPool), BlockId: proto.Uint64(1 << 30), GenerationStamp: proto.Uint64(1001)}
	hdr := &pb.ClientOperationHeaderProto{BaseHeader: &pb.BaseHeaderProto{Block: eb}, ClientName: proto.String("c")}
	w, _ := appendDelimited([]byte{0, dataTransferVersion, opWriteBlock}, &pb.OpWriteBlockProto{Header: hdr,
		Stage: pb.OpWriteBlockProto_PIPELINE_SETUP_CREATE.Enum(), PipelineSize: proto.Uint32(0), MinBytesRcvd: proto.Uint64(0),
		MaxBytesRcvd: proto.Uint64(0), LatestGenerationStamp: proto.Uint64(0),
		RequestedChecksum: &pb.ChecksumProto{Type: pb.ChecksumTypeProto_CHECKSUM_CRC32C.Enum(), BytesPerChecksum: proto.Uint32(512)}})
	r, _ := appendDelimited([]byte{0, dataTransferVersion, opReadBlock}, &pb.OpReadBlockProto{Header: hdr, Offset: proto.Uint64(0), Len: proto.Uint64(10)})
	f.Add(w)
	f.Add(r)
	f.Fuzz(func(t *testing.T, data []byte) {
		op, msg, err := readOp(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			if errors.Is(err, io.EOF) && len(data) >= 3 {
				t.Fatalf("EOF after a full header: %v", err)
			}
			return
		}
		switch op {
		case opWriteBlock:
			_ = proto.Unmarshal(msg, &pb.OpWriteBlockProto{})
		case opReadBlock:
			_ = proto.Unmarshal(msg, &pb.OpReadBlockProto{})
		}
	})
}
