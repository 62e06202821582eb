package hdfstest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/weir-stream/weir/proto/hadoop/v1"
)

// Java exception classes the namenode answers with; the client maps some of
// them to os errors (colinmarc/hdfs error.go).
const (
	excFileNotFound       = "java.io.FileNotFoundException"
	excAccessControl      = "org.apache.hadoop.security.AccessControlException"
	excNotEmpty           = "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException"
	excAlreadyExists      = "org.apache.hadoop.fs.FileAlreadyExistsException"
	excBeingCreated       = "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException"
	excParentNotDirectory = "org.apache.hadoop.fs.ParentNotDirectoryException"
	excInvalidPath        = "org.apache.hadoop.fs.InvalidPathException"
	excLeaseExpired       = "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException"
	excIO                 = "java.io.IOException"
	excNoSuchMethod       = "org.apache.hadoop.ipc.RpcNoSuchMethodException"
	excServer             = "org.apache.hadoop.ipc.RpcServerException"
	excStandby            = "org.apache.hadoop.ipc.StandbyException"
)

const blockPool = "BP-weir-hdfstest"

// remoteError is an exception the namenode returns to the caller.
type remoteError struct {
	class string
	msg   string
	code  pb.RpcResponseHeaderProto_RpcErrorCodeProto
}

func (e *remoteError) Error() string { return e.class + ": " + e.msg }

func exc(class, format string, args ...any) error {
	return &remoteError{class: class, msg: fmt.Sprintf(format, args...), code: pb.RpcResponseHeaderProto_ERROR_APPLICATION}
}

type inode struct {
	id           uint64
	dir          bool
	children     map[string]*inode
	perm         uint32
	owner, group string
	mtime        time.Time

	// files
	blocks      []*block
	complete    bool
	leaseHolder string // client name while under construction
	blockSize   uint64
	replication uint32
}

func (n *inode) length() int64 {
	var l int64
	for _, b := range n.blocks {
		l += int64(len(b.data))
	}
	return l
}

type block struct {
	id        uint64
	gs        uint64
	data      []byte // appended by one WRITE_BLOCK; immutable once finalized
	finalized bool
	writing   bool
}

func (b *block) extended() *pb.ExtendedBlockProto {
	return &pb.ExtendedBlockProto{PoolId: proto.String(blockPool), BlockId: proto.Uint64(b.id),
		GenerationStamp: proto.Uint64(b.gs), NumBytes: proto.Uint64(uint64(len(b.data)))}
}

func (s *Server) serveNameNode(c net.Conn, nn int) {
	remote := c.RemoteAddr().String()
	br := bufio.NewReader(c)
	if err := readPreamble(br); err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			s.protocolError("namenode %s: %v", remote, err)
		}
		return
	}
	body, err := readFrame(br)
	if err != nil {
		s.protocolError("namenode %s: connection context: %v", remote, err)
		return
	}
	cc, err := decodeConnectionContext(body)
	if err != nil {
		s.protocolError("namenode %s: %v", remote, err)
		return
	}
	user := cc.GetUserInfo().GetEffectiveUser()
	for {
		body, err := readFrame(br)
		if err != nil {
			// A client that goes away, even mid-frame, is not a protocol
			// error.
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
				s.protocolError("namenode %s: %v", remote, err)
			}
			return
		}
		cl, err := decodeCall(body)
		if err != nil {
			s.protocolError("namenode %s: %v", remote, err)
			// Hadoop answers a bad request with FATAL (callId -1 when the
			// header itself is unreadable) and closes.
			h := &pb.RpcRequestHeaderProto{CallId: proto.Int32(-1)}
			if cl != nil {
				h = cl.header
			}
			s.respond(c, h, nil, &remoteError{class: excServer, msg: err.Error(),
				code: pb.RpcResponseHeaderProto_FATAL_DESERIALIZING_REQUEST}, true)
			return
		}
		if cl.method == "" {
			return // RPC_CLOSE_CONNECTION
		}
		var resp proto.Message
		var rerr error
		if s.isStandby(nn) {
			rerr = exc(excStandby, "Operation category %s is not supported in state standby", cl.method)
		} else {
			resp, rerr = s.dispatch(user, cl)
		}
		if !s.sleep(s.currentFaults().RPCDelay) {
			return
		}
		if err := s.respond(c, cl.header, resp, rerr, false); err != nil {
			return
		}
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

func (s *Server) respond(c net.Conn, h *pb.RpcRequestHeaderProto, resp proto.Message, rerr error, fatal bool) error {
	rh := &pb.RpcResponseHeaderProto{
		CallId:              proto.Uint32(uint32(h.GetCallId())),
		Status:              pb.RpcResponseHeaderProto_SUCCESS.Enum(),
		ServerIpcVersionNum: proto.Uint32(ipcVersion),
		ClientId:            h.GetClientId(),
		RetryCount:          proto.Int32(h.GetRetryCount()),
	}
	if rerr != nil {
		re, ok := rerr.(*remoteError)
		if !ok {
			re = &remoteError{class: excIO, msg: rerr.Error(), code: pb.RpcResponseHeaderProto_ERROR_RPC_SERVER}
		}
		rh.Status = pb.RpcResponseHeaderProto_ERROR.Enum()
		if fatal {
			rh.Status = pb.RpcResponseHeaderProto_FATAL.Enum()
		}
		rh.ExceptionClassName, rh.ErrorMsg, rh.ErrorDetail = proto.String(re.class), proto.String(re.msg), re.code.Enum()
		resp = nil
	}
	b, err := encodeResponse(rh, resp)
	if err != nil {
		// A handler built an incomplete message: a server bug, reported as such.
		s.protocolError("namenode: encode response to call %d: %v", h.GetCallId(), err)
		rh.Status = pb.RpcResponseHeaderProto_ERROR.Enum()
		rh.ExceptionClassName, rh.ErrorMsg = proto.String(excServer), proto.String(err.Error())
		rh.ErrorDetail = pb.RpcResponseHeaderProto_ERROR_SERIALIZING_RESPONSE.Enum()
		if b, err = encodeResponse(rh, nil); err != nil {
			return err
		}
	}
	_, err = c.Write(b)
	return err
}

// handler decodes its request from param and returns the response.
type handler func(s *Server, user string, param []byte) (proto.Message, error)

var handlers = map[string]handler{
	"getFileInfo":            (*Server).getFileInfo,
	"mkdirs":                 (*Server).mkdirs,
	"getServerDefaults":      (*Server).getServerDefaults,
	"create":                 (*Server).create,
	"addBlock":               (*Server).addBlock,
	"updateBlockForPipeline": (*Server).updateBlockForPipeline,
	"complete":               (*Server).complete,
	"getBlockLocations":      (*Server).getBlockLocations,
	"rename2":                (*Server).rename2,
	"rename":                 (*Server).rename,
	"delete":                 (*Server).delete,
	"getListing":             (*Server).getListing,
	"renewLease":             (*Server).renewLease,
}

func (s *Server) dispatch(user string, cl *call) (proto.Message, error) {
	s.mu.Lock()
	s.calls[cl.method]++
	s.mu.Unlock()
	if cl.protocol != clientProtocol {
		return nil, &remoteError{class: excNoSuchMethod, msg: fmt.Sprintf("unknown protocol %s", cl.protocol),
			code: pb.RpcResponseHeaderProto_ERROR_NO_SUCH_PROTOCOL}
	}
	h, ok := handlers[cl.method]
	if !ok {
		return nil, &remoteError{class: excNoSuchMethod, msg: fmt.Sprintf("unknown method %s called on %s protocol (hdfstest implements only what colinmarc/hdfs needs)", cl.method, clientProtocol),
			code: pb.RpcResponseHeaderProto_ERROR_NO_SUCH_METHOD}
	}
	return h(s, user, cl.param)
}

// decode unmarshals a request; a malformed one is a protocol error.
func (s *Server) decode(param []byte, m proto.Message) error {
	if err := proto.Unmarshal(param, m); err != nil {
		s.protocolError("namenode: %T: %v", m, err)
		return &remoteError{class: excServer, msg: fmt.Sprintf("cannot decode %T: %v", m, err),
			code: pb.RpcResponseHeaderProto_ERROR_RPC_SERVER}
	}
	return nil
}

// splitPath checks an absolute HDFS path and returns its components.
func splitPath(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, exc(excInvalidPath, "Invalid path name %s: not absolute", p)
	}
	var parts []string
	for _, e := range strings.Split(p, "/") {
		switch {
		case e == "":
		case e == "." || e == ".." || strings.ContainsRune(e, ':'):
			return nil, exc(excInvalidPath, "Invalid path name %s", p)
		default:
			parts = append(parts, e)
		}
	}
	return parts, nil
}

// lookup returns the inode at p, or nil. Called with s.mu held.
func (s *Server) lookup(p string) (*inode, error) {
	parts, err := splitPath(p)
	if err != nil {
		return nil, err
	}
	n := s.root
	for _, e := range parts {
		if !n.dir {
			return nil, nil
		}
		if n = n.children[e]; n == nil {
			return nil, nil
		}
	}
	return n, nil
}

// parent returns the directory that holds p and p's base name, creating
// missing directories when create is set. Called with s.mu held.
func (s *Server) parent(p, user string, create bool) (*inode, string, error) {
	parts, err := splitPath(p)
	if err != nil {
		return nil, "", err
	}
	if len(parts) == 0 {
		return nil, "", exc(excInvalidPath, "Invalid path name %s: the root", p)
	}
	n := s.root
	for i, e := range parts[:len(parts)-1] {
		c := n.children[e]
		switch {
		case c == nil && !create:
			return nil, "", exc(excFileNotFound, "Parent directory doesn't exist: /%s", strings.Join(parts[:i+1], "/"))
		case c == nil:
			c = s.newDir(user)
			n.children[e] = c
		case !c.dir:
			return nil, "", exc(excParentNotDirectory, "Parent path is not a directory: /%s", strings.Join(parts[:i+1], "/"))
		}
		n = c
	}
	return n, parts[len(parts)-1], nil
}

func (s *Server) newDir(user string) *inode {
	s.nextFile++
	return &inode{id: s.nextFile, dir: true, children: map[string]*inode{}, perm: 0o755, owner: user,
		group: s.cfg.Group, mtime: time.Now()}
}

func (s *Server) checkWrite(user, p string) error {
	for _, pre := range s.faults.DenyWrite {
		pre = strings.TrimRight(pre, "/")
		if p == pre || strings.HasPrefix(p, pre+"/") || pre == "" {
			return exc(excAccessControl, "Permission denied: user=%s, access=WRITE, inode=\"%s\"", user, p)
		}
	}
	return nil
}

func (s *Server) status(n *inode, name string) *pb.HdfsFileStatusProto {
	st := &pb.HdfsFileStatusProto{
		FileType:         pb.HdfsFileStatusProto_IS_FILE.Enum(),
		Path:             []byte(name),
		Length:           proto.Uint64(uint64(n.length())),
		Permission:       &pb.FsPermissionProto{Perm: proto.Uint32(n.perm)},
		Owner:            proto.String(n.owner),
		Group:            proto.String(n.group),
		ModificationTime: proto.Uint64(uint64(n.mtime.UnixMilli())),
		AccessTime:       proto.Uint64(uint64(n.mtime.UnixMilli())),
		FileId:           proto.Uint64(n.id),
	}
	if n.dir {
		st.FileType = pb.HdfsFileStatusProto_IS_DIR.Enum()
		st.Length = proto.Uint64(0)
		st.ChildrenNum = proto.Int32(int32(len(n.children)))
	} else {
		st.BlockReplication, st.Blocksize = proto.Uint32(n.replication), proto.Uint64(n.blockSize)
	}
	return st
}

func (s *Server) getFileInfo(_ string, param []byte) (proto.Message, error) {
	req := &pb.GetFileInfoRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.lookup(req.GetSrc())
	if err != nil {
		return nil, err
	}
	resp := &pb.GetFileInfoResponseProto{}
	if n != nil {
		resp.Fs = s.status(n, "")
	}
	return resp, nil
}

func (s *Server) mkdirs(user string, param []byte) (proto.Message, error) {
	req := &pb.MkdirsRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src := req.GetSrc()
	if err := s.checkWrite(user, src); err != nil {
		return nil, err
	}
	if n, err := s.lookup(src); err != nil {
		return nil, err
	} else if n != nil {
		if !n.dir {
			return nil, exc(excAlreadyExists, "Path is not a directory: %s", src)
		}
		return &pb.MkdirsResponseProto{Result: proto.Bool(true)}, nil
	}
	dir, name, err := s.parent(src, user, req.GetCreateParent())
	if err != nil {
		return nil, err
	}
	d := s.newDir(user)
	if m := req.GetMasked(); m != nil {
		d.perm = m.GetPerm() & 0o7777
	}
	dir.children[name] = d
	dir.mtime = time.Now()
	return &pb.MkdirsResponseProto{Result: proto.Bool(true)}, nil
}

func (s *Server) getServerDefaults(_ string, param []byte) (proto.Message, error) {
	req := &pb.GetServerDefaultsRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	return &pb.GetServerDefaultsResponseProto{ServerDefaults: &pb.FsServerDefaultsProto{
		BlockSize:           proto.Uint64(uint64(s.cfg.BlockSize)),
		BytesPerChecksum:    proto.Uint32(512),
		WritePacketSize:     proto.Uint32(64 << 10),
		Replication:         proto.Uint32(1),
		FileBufferSize:      proto.Uint32(4096),
		EncryptDataTransfer: proto.Bool(false),
		TrashInterval:       proto.Uint64(0),
		ChecksumType:        pb.ChecksumTypeProto_CHECKSUM_CRC32C.Enum(),
	}}, nil
}

func (s *Server) create(user string, param []byte) (proto.Message, error) {
	req := &pb.CreateRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src := req.GetSrc()
	if err := s.checkWrite(user, src); err != nil {
		return nil, err
	}
	flags := req.GetCreateFlag()
	if flags&uint32(pb.CreateFlagProto_APPEND) != 0 {
		return nil, exc(excIO, "create %s: APPEND is not supported by hdfstest", src)
	}
	dir, name, err := s.parent(src, user, req.GetCreateParent())
	if err != nil {
		return nil, err
	}
	if old := dir.children[name]; old != nil {
		switch {
		case old.dir:
			return nil, exc(excAlreadyExists, "%s already exists as a directory", src)
		case !old.complete && old.leaseHolder != "":
			return nil, exc(excBeingCreated, "failed to create file %s for %s: the file is already being created by %s", src, req.GetClientName(), old.leaseHolder)
		case flags&uint32(pb.CreateFlagProto_OVERWRITE) == 0:
			return nil, exc(excAlreadyExists, "%s for client %s already exists", src, req.GetClientName())
		}
	}
	s.nextFile++
	f := &inode{id: s.nextFile, perm: 0o644, owner: user, group: s.cfg.Group, mtime: time.Now(),
		leaseHolder: req.GetClientName(), blockSize: req.GetBlockSize(), replication: req.GetReplication()}
	if m := req.GetMasked(); m != nil {
		f.perm = m.GetPerm() & 0o7777
	}
	if f.blockSize == 0 {
		f.blockSize = uint64(s.cfg.BlockSize)
	}
	dir.children[name] = f
	dir.mtime = f.mtime
	return &pb.CreateResponseProto{Fs: s.status(f, "")}, nil
}

// underConstruction finds the file src being written by client. Called with
// s.mu held.
func (s *Server) underConstruction(src, client string, fileID uint64) (*inode, error) {
	n, err := s.lookup(src)
	if err != nil {
		return nil, err
	}
	if n == nil || n.dir {
		return nil, exc(excFileNotFound, "File does not exist: %s (inode %d)", src, fileID)
	}
	if fileID != 0 && n.id != fileID {
		return nil, exc(excFileNotFound, "File does not exist: %s (inode %d; the file at this path is inode %d)", src, fileID, n.id)
	}
	if n.complete || n.leaseHolder != client {
		return nil, exc(excLeaseExpired, "No lease on %s: %s does not hold a lease on it", src, client)
	}
	return n, nil
}

// checkLast checks the client's view of a file's last block against the
// datanode's. Called with s.mu held.
func checkLast(src string, n *inode, last *pb.ExtendedBlockProto) error {
	if len(n.blocks) == 0 {
		if last != nil {
			return exc(excIO, "%s: the client reports block %d but the file has no blocks", src, last.GetBlockId())
		}
		return nil
	}
	b := n.blocks[len(n.blocks)-1]
	switch {
	case last == nil:
		return exc(excIO, "%s: the client reports no last block, the file's last block is %d", src, b.id)
	case last.GetBlockId() != b.id:
		return exc(excIO, "%s: the client reports last block %d, the file's last block is %d", src, last.GetBlockId(), b.id)
	case !b.finalized && !b.writing && len(b.data) == 0 && last.GetNumBytes() == 0:
		// The client allocated a block and never wrote to it (an empty
		// Write): commit it empty.
		b.finalized = true
		return nil
	case !b.finalized:
		return exc(excIO, "%s: block %d is not finalized on the datanode (%d bytes received)", src, b.id, len(b.data))
	case last.GetNumBytes() != uint64(len(b.data)):
		return exc(excIO, "%s: the client reports %d bytes in block %d, the datanode holds %d", src, last.GetNumBytes(), b.id, len(b.data))
	}
	return nil
}

func (s *Server) located(b *block, offset int64) *pb.LocatedBlockProto {
	port := s.datanodePort()
	return &pb.LocatedBlockProto{
		B:       b.extended(),
		Offset:  proto.Uint64(uint64(offset)),
		Corrupt: proto.Bool(false),
		Locs: []*pb.DatanodeInfoProto{{
			Id: &pb.DatanodeIDProto{IpAddr: proto.String("127.0.0.1"), HostName: proto.String("localhost"),
				DatanodeUuid: proto.String("hdfstest-dn-1"), XferPort: proto.Uint32(port),
				InfoPort: proto.Uint32(0), IpcPort: proto.Uint32(0)},
		}},
		BlockToken:   &pb.TokenProto{Identifier: []byte{}, Password: []byte{}, Kind: proto.String(""), Service: proto.String("")},
		StorageTypes: []pb.StorageTypeProto{pb.StorageTypeProto_DISK},
		StorageIDs:   []string{"DS-hdfstest-1"},
	}
}

func (s *Server) addBlock(_ string, param []byte) (proto.Message, error) {
	req := &pb.AddBlockRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.underConstruction(req.GetSrc(), req.GetClientName(), req.GetFileId())
	if err != nil {
		return nil, err
	}
	if err := checkLast(req.GetSrc(), n, req.Previous); err != nil {
		return nil, err
	}
	s.nextBlock++
	b := &block{id: s.nextBlock, gs: 1001}
	s.blocks[b.id] = b
	off := n.length()
	n.blocks = append(n.blocks, b)
	return &pb.AddBlockResponseProto{Block: s.located(b, off)}, nil
}

func (s *Server) updateBlockForPipeline(_ string, param []byte) (proto.Message, error) {
	req := &pb.UpdateBlockForPipelineRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.blocks[req.GetBlock().GetBlockId()]
	if b == nil || req.GetBlock().GetPoolId() != blockPool {
		return nil, exc(excIO, "updateBlockForPipeline: unknown block %s:%d", req.GetBlock().GetPoolId(), req.GetBlock().GetBlockId())
	}
	// A real namenode bumps the generation stamp for a pipeline recovery;
	// the client only calls this after a block is finished and ignores the
	// answer, so the block is returned as it is.
	return &pb.UpdateBlockForPipelineResponseProto{Block: s.located(b, 0)}, nil
}

func (s *Server) complete(_ string, param []byte) (proto.Message, error) {
	req := &pb.CompleteRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.underConstruction(req.GetSrc(), req.GetClientName(), req.GetFileId())
	if err != nil {
		return nil, err
	}
	if err := checkLast(req.GetSrc(), n, req.Last); err != nil {
		return nil, err
	}
	n.complete, n.leaseHolder, n.mtime = true, "", time.Now()
	return &pb.CompleteResponseProto{Result: proto.Bool(true)}, nil
}

func (s *Server) getBlockLocations(_ string, param []byte) (proto.Message, error) {
	req := &pb.GetBlockLocationsRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.lookup(req.GetSrc())
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, exc(excFileNotFound, "File does not exist: %s", req.GetSrc())
	}
	if n.dir {
		return nil, exc(excFileNotFound, "Path is not a file: %s", req.GetSrc())
	}
	lbs := &pb.LocatedBlocksProto{FileLength: proto.Uint64(uint64(n.length())),
		UnderConstruction: proto.Bool(!n.complete), IsLastBlockComplete: proto.Bool(n.complete)}
	start, end := req.GetOffset(), req.GetOffset()+req.GetLength()
	var off uint64
	for _, b := range n.blocks {
		bl := uint64(len(b.data))
		if off+bl > start && off < end && b.finalized {
			lbs.Blocks = append(lbs.Blocks, s.located(b, int64(off)))
		}
		off += bl
	}
	return &pb.GetBlockLocationsResponseProto{Locations: lbs}, nil
}

// isUnder reports whether path b is a or below it.
func isUnder(b, a string) bool {
	a = strings.TrimRight(a, "/")
	return b == a || strings.HasPrefix(b, a+"/")
}

func (s *Server) rename2(user string, param []byte) (proto.Message, error) {
	req := &pb.Rename2RequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src, dst := req.GetSrc(), req.GetDst()
	if err := s.checkWrite(user, src); err != nil {
		return nil, err
	}
	if err := s.checkWrite(user, dst); err != nil {
		return nil, err
	}
	sn, err := s.lookup(src)
	if err != nil {
		return nil, err
	}
	if sn == nil {
		return nil, exc(excFileNotFound, "rename source %s is not found.", src)
	}
	if sn == s.root {
		return nil, exc(excIO, "rename source cannot be the root")
	}
	if isUnder(path(dst), path(src)) {
		return nil, exc(excIO, "rename destination %s is a directory or file under source %s", dst, src)
	}
	dparent, dname, err := s.parent(dst, user, false)
	if err != nil {
		var re *remoteError
		if errors.As(err, &re) && re.class == excFileNotFound {
			return nil, exc(excFileNotFound, "rename destination parent of %s not found.", dst)
		}
		return nil, err
	}
	if dn := dparent.children[dname]; dn != nil {
		if !req.GetOverwriteDest() {
			return nil, exc(excAlreadyExists, "rename destination %s already exists.", dst)
		}
		if dn.dir != sn.dir {
			return nil, exc(excIO, "Source %s and destination %s must both be directories or both files", src, dst)
		}
		if dn.dir && len(dn.children) > 0 {
			return nil, exc(excIO, "rename destination directory is not empty: %s", dst)
		}
		s.forgetBlocks(dn)
	}
	sparent, sname, _ := s.parent(src, user, false)
	delete(sparent.children, sname)
	dparent.children[dname] = sn
	now := time.Now()
	sparent.mtime, dparent.mtime = now, now
	return &pb.Rename2ResponseProto{}, nil
}

// path cleans an HDFS path for comparisons.
func path(p string) string {
	parts, _ := splitPath(p)
	return "/" + strings.Join(parts, "/")
}

func (s *Server) rename(user string, param []byte) (proto.Message, error) {
	req := &pb.RenameRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	// The old rename answers false instead of most exceptions, and moves a
	// source into an existing destination directory.
	s.mu.Lock()
	dst := req.GetDst()
	if dn, err := s.lookup(dst); err == nil && dn != nil && dn.dir {
		dst = path(dst) + "/" + basename(req.GetSrc())
	}
	s.mu.Unlock()
	b, err := proto.Marshal(&pb.Rename2RequestProto{Src: req.Src, Dst: proto.String(dst), OverwriteDest: proto.Bool(false)})
	if err != nil {
		return nil, err
	}
	if _, err := s.rename2(user, b); err != nil {
		var re *remoteError
		if errors.As(err, &re) && re.class == excAccessControl {
			return nil, err
		}
		return &pb.RenameResponseProto{Result: proto.Bool(false)}, nil
	}
	return &pb.RenameResponseProto{Result: proto.Bool(true)}, nil
}

func basename(p string) string {
	parts, _ := splitPath(p)
	if len(parts) == 0 {
		return ""
	}
	return parts[len(parts)-1]
}

func (s *Server) delete(user string, param []byte) (proto.Message, error) {
	req := &pb.DeleteRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src := req.GetSrc()
	if err := s.checkWrite(user, src); err != nil {
		return nil, err
	}
	n, err := s.lookup(src)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return &pb.DeleteResponseProto{Result: proto.Bool(false)}, nil
	}
	if n == s.root {
		return nil, exc(excIO, "cannot delete the root directory")
	}
	if n.dir && len(n.children) > 0 && !req.GetRecursive() {
		return nil, exc(excNotEmpty, "`%s is non empty': Directory is not empty", src)
	}
	dir, name, _ := s.parent(src, user, false)
	delete(dir.children, name)
	dir.mtime = time.Now()
	s.forgetBlocks(n)
	return &pb.DeleteResponseProto{Result: proto.Bool(true)}, nil
}

// forgetBlocks drops the blocks of n and everything under it. Called with
// s.mu held.
func (s *Server) forgetBlocks(n *inode) {
	for _, b := range n.blocks {
		delete(s.blocks, b.id)
	}
	for _, c := range n.children {
		s.forgetBlocks(c)
	}
}

func (s *Server) getListing(_ string, param []byte) (proto.Message, error) {
	req := &pb.GetListingRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.lookup(req.GetSrc())
	if err != nil {
		return nil, err
	}
	if n == nil {
		return &pb.GetListingResponseProto{}, nil
	}
	list := &pb.DirectoryListingProto{RemainingEntries: proto.Uint32(0)}
	if !n.dir {
		list.PartialListing = []*pb.HdfsFileStatusProto{s.status(n, "")}
		return &pb.GetListingResponseProto{DirList: list}, nil
	}
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		if name > string(req.GetStartAfter()) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) > s.cfg.ListingLimit {
		list.RemainingEntries = proto.Uint32(uint32(len(names) - s.cfg.ListingLimit))
		names = names[:s.cfg.ListingLimit]
	}
	for _, name := range names {
		list.PartialListing = append(list.PartialListing, s.status(n.children[name], name))
	}
	return &pb.GetListingResponseProto{DirList: list}, nil
}

func (s *Server) renewLease(_ string, param []byte) (proto.Message, error) {
	req := &pb.RenewLeaseRequestProto{}
	if err := s.decode(param, req); err != nil {
		return nil, err
	}
	return &pb.RenewLeaseResponseProto{}, nil
}
