package hdfstest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	gohdfs "github.com/colinmarc/hdfs/v2"
	"google.golang.org/protobuf/proto"

	pb "github.com/weir-stream/weir/proto/hadoop/v1"
)

// rawClient speaks Hadoop IPC with hand-built frames, for what the
// colinmarc client never sends.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	r  *bufio.Reader
	id int32
}

func dialRaw(t *testing.T, s *Server) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", s.NameNodeAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(append(append([]byte(nil), preamble...), frame(t, rpcHeader(connectionContextID), connContext("raw"))...)); err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, c: c, r: bufio.NewReader(c)}
}

// call sends a request and returns the response header, decoding the
// response into resp on success.
func (rc *rawClient) call(method string, req, resp proto.Message) *pb.RpcResponseHeaderProto {
	rc.t.Helper()
	rc.id++
	if _, err := rc.c.Write(frame(rc.t, rpcHeader(rc.id), reqHeader(method), req)); err != nil {
		rc.t.Fatal(err)
	}
	return rc.read(resp)
}

func (rc *rawClient) read(resp proto.Message) *pb.RpcResponseHeaderProto {
	rc.t.Helper()
	body, err := readFrame(rc.r)
	if err != nil {
		rc.t.Fatal(err)
	}
	msgs, err := splitDelimited(body)
	if err != nil {
		rc.t.Fatal(err)
	}
	h := &pb.RpcResponseHeaderProto{}
	if err := proto.Unmarshal(msgs[0], h); err != nil {
		rc.t.Fatal(err)
	}
	if h.GetStatus() == pb.RpcResponseHeaderProto_SUCCESS {
		if len(msgs) != 2 {
			rc.t.Fatalf("a success with %d messages", len(msgs))
		}
		if err := proto.Unmarshal(msgs[1], resp); err != nil {
			rc.t.Fatal(err)
		}
	}
	return h
}

func wantException(t *testing.T, h *pb.RpcResponseHeaderProto, class, msg string) {
	t.Helper()
	if h.GetStatus() == pb.RpcResponseHeaderProto_SUCCESS || h.GetExceptionClassName() != class || !strings.Contains(h.GetErrorMsg(), msg) {
		t.Fatalf("got %v %s: %s; want %s containing %q", h.GetStatus(), h.GetExceptionClassName(), h.GetErrorMsg(), class, msg)
	}
}

func TestNameNodeSemantics(t *testing.T) {
	s := New(t, Config{})
	rc := dialRaw(t, s)
	ok := func(h *pb.RpcResponseHeaderProto) {
		t.Helper()
		if h.GetStatus() != pb.RpcResponseHeaderProto_SUCCESS {
			t.Fatalf("%s: %s", h.GetExceptionClassName(), h.GetErrorMsg())
		}
	}
	perm := &pb.FsPermissionProto{Perm: proto.Uint32(0o755)}
	ok(rc.call("mkdirs", &pb.MkdirsRequestProto{Src: proto.String("/a/b"), Masked: perm, CreateParent: proto.Bool(true)}, &pb.MkdirsResponseProto{}))
	ok(rc.call("mkdirs", &pb.MkdirsRequestProto{Src: proto.String("/c"), Masked: perm, CreateParent: proto.Bool(false)}, &pb.MkdirsResponseProto{}))
	wantException(t, rc.call("mkdirs", &pb.MkdirsRequestProto{Src: proto.String("/x/y"), Masked: perm, CreateParent: proto.Bool(false)}, &pb.MkdirsResponseProto{}),
		excFileNotFound, "Parent directory doesn't exist: /x")

	// rename2 without overwrite refuses an existing target.
	wantException(t, rc.call("rename2", &pb.Rename2RequestProto{Src: proto.String("/a/b"), Dst: proto.String("/c"), OverwriteDest: proto.Bool(false)}, &pb.Rename2ResponseProto{}),
		excAlreadyExists, "rename destination /c already exists")
	wantException(t, rc.call("rename2", &pb.Rename2RequestProto{Src: proto.String("/a"), Dst: proto.String("/a/b/z"), OverwriteDest: proto.Bool(false)}, &pb.Rename2ResponseProto{}),
		excIO, "under source")
	// The old rename moves into an existing directory, and answers false
	// rather than throwing.
	var rr pb.RenameResponseProto
	ok(rc.call("rename", &pb.RenameRequestProto{Src: proto.String("/a/b"), Dst: proto.String("/c")}, &rr))
	if !rr.GetResult() {
		t.Fatal("rename /a/b into /c: false")
	}
	var fi pb.GetFileInfoResponseProto
	ok(rc.call("getFileInfo", &pb.GetFileInfoRequestProto{Src: proto.String("/c/b")}, &fi))
	if fi.GetFs().GetFileType() != pb.HdfsFileStatusProto_IS_DIR {
		t.Fatalf("/c/b after rename: %v", fi.GetFs())
	}
	ok(rc.call("rename", &pb.RenameRequestProto{Src: proto.String("/nope"), Dst: proto.String("/d")}, &rr))
	if rr.GetResult() {
		t.Fatal("rename of a missing source: true")
	}

	var del pb.DeleteResponseProto
	wantException(t, rc.call("delete", &pb.DeleteRequestProto{Src: proto.String("/c"), Recursive: proto.Bool(false)}, &del),
		excNotEmpty, "is non empty")
	ok(rc.call("delete", &pb.DeleteRequestProto{Src: proto.String("/c"), Recursive: proto.Bool(true)}, &del))
	if !del.GetResult() {
		t.Fatal("delete /c: false")
	}

	// Unknown methods and protocols are RPC errors, not dropped connections.
	wantException(t, rc.call("append", &pb.GetFileInfoRequestProto{Src: proto.String("/")}, &pb.GetFileInfoResponseProto{}),
		excNoSuchMethod, "unknown method append")
	if h := rc.call("getFileInfo", &pb.GetFileInfoRequestProto{Src: proto.String("relative")}, &fi); h.GetExceptionClassName() != excInvalidPath {
		t.Fatalf("relative path: %v", h)
	}
	if errs := s.ProtocolErrors(); len(errs) != 0 {
		t.Fatalf("protocol errors: %v", errs)
	}

	// A request that does not decode gets FATAL, the connection closes, and
	// the server records why.
	rc.id++
	if _, err := rc.c.Write(frame(t, rpcHeader(rc.id), reqHeader("getFileInfo"), &pb.GetServerDefaultsRequestProto{})); err != nil {
		t.Fatal(err)
	}
	h := rc.read(nil)
	if h.GetStatus() != pb.RpcResponseHeaderProto_ERROR || !strings.Contains(h.GetErrorMsg(), "cannot decode") {
		t.Fatalf("undecodable request: %v", h)
	}
	if errs := s.ProtocolErrors(); len(errs) != 1 || !strings.Contains(errs[0], "GetFileInfoRequestProto") {
		t.Fatalf("protocol errors: %v", errs)
	}
	// A frame that is not three messages is fatal.
	if _, err := rc.c.Write([]byte{0, 0, 0, 1, 0}); err != nil {
		t.Fatal(err)
	}
	h = rc.read(nil)
	if h.GetStatus() != pb.RpcResponseHeaderProto_FATAL || h.GetCallId() != 0xffffffff ||
		h.GetErrorDetail() != pb.RpcResponseHeaderProto_FATAL_DESERIALIZING_REQUEST || !strings.Contains(h.GetErrorMsg(), "RpcRequestHeaderProto") {
		t.Fatalf("bad frame: %v", h)
	}
	if _, err := rc.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after FATAL the connection stays open: %v", err)
	}
}

// TestClientReadsAtOffsets drives the colinmarc client directly: reads at
// offsets inside chunks and across blocks exercise READ_BLOCK's chunk
// alignment.
func TestClientReadsAtOffsets(t *testing.T) {
	s := New(t, Config{BlockSize: 64 << 10})
	c, err := gohdfs.NewClient(gohdfs.ClientOptions{Addresses: []string{s.NameNodeAddr()}, User: "weir"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 200<<10+123)
	for i := range data {
		data[i] = byte(i * 31 >> 3)
	}
	w, err := c.Create("/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := c.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, off := range []int64{0, 1, 511, 512, 700, 64<<10 - 3, 64 << 10, 150000, int64(len(data)) - 5} {
		buf := make([]byte, min(70000, len(data)-int(off)))
		if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
		if !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
			t.Fatalf("ReadAt(%d) differs", off)
		}
	}
	// Blocks of the file: four of 64 KiB, the last partial.
	fs := s.Files()
	if len(fs) != 1 || fs[0].Length != int64(len(data)) || !fs[0].Complete {
		t.Fatalf("Files = %+v", fs)
	}
	if _, err := c.Create("/f"); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create of an existing file: %v", err)
	}
	if errs := s.ProtocolErrors(); len(errs) != 0 {
		t.Fatalf("protocol errors: %v", errs)
	}
}

// TestStopStartNameNode: a stopped namenode refuses connections and comes
// back on the same address with its namespace.
func TestStopStartNameNode(t *testing.T) {
	s := New(t, Config{})
	rc := dialRaw(t, s)
	perm := &pb.FsPermissionProto{Perm: proto.Uint32(0o755)}
	rc.call("mkdirs", &pb.MkdirsRequestProto{Src: proto.String("/kept"), Masked: perm, CreateParent: proto.Bool(true)}, &pb.MkdirsResponseProto{})
	s.StopNameNode()
	if _, err := rc.r.ReadByte(); err == nil {
		t.Fatal("an open connection survived StopNameNode")
	}
	if c, err := net.DialTimeout("tcp", s.NameNodeAddr(), time.Second); err == nil {
		c.Close()
		t.Fatal("a stopped namenode accepted a connection")
	}
	if err := s.StartNameNode(); err != nil {
		t.Fatal(err)
	}
	rc = dialRaw(t, s)
	var fi pb.GetFileInfoResponseProto
	rc.call("getFileInfo", &pb.GetFileInfoRequestProto{Src: proto.String("/kept")}, &fi)
	if fi.GetFs() == nil {
		t.Fatal("the namespace was lost")
	}
}
