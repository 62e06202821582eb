package hdfstest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/weir-stream/weir/proto/hadoop/v1"
)

const readPacketSize = 64 << 10 // data bytes per READ_BLOCK packet, a multiple of the chunk size

var (
	errDropped    = errors.New("connection dropped by the DropWriteAfter fault")
	errClientGone = errors.New("the client closed the connection before the last packet")
)

func (s *Server) serveDataNode(c net.Conn) {
	remote := c.RemoteAddr().String()
	br := bufio.NewReader(c)
	op, msg, err := readOp(br)
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			s.protocolError("datanode %s: %v", remote, err)
		}
		return
	}
	switch op {
	case opWriteBlock:
		req := &pb.OpWriteBlockProto{}
		if err := proto.Unmarshal(msg, req); err != nil {
			s.protocolError("datanode %s: OpWriteBlockProto: %v", remote, err)
			s.opResponse(c, pb.Status_ERROR_INVALID, fmt.Sprintf("cannot decode OpWriteBlockProto: %v", err), nil)
			return
		}
		err = s.writeBlock(c, br, req)
	case opReadBlock:
		req := &pb.OpReadBlockProto{}
		if err := proto.Unmarshal(msg, req); err != nil {
			s.protocolError("datanode %s: OpReadBlockProto: %v", remote, err)
			s.opResponse(c, pb.Status_ERROR_INVALID, fmt.Sprintf("cannot decode OpReadBlockProto: %v", err), nil)
			return
		}
		err = s.readBlock(c, br, req)
	default:
		s.protocolError("datanode %s: unsupported op %#x", remote, op)
		s.opResponse(c, pb.Status_ERROR_UNSUPPORTED, fmt.Sprintf("op %#x is not supported by hdfstest (only WRITE_BLOCK and READ_BLOCK)", op), nil)
		return
	}
	if err != nil && !errors.Is(err, errDropped) && !errors.Is(err, errClientGone) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) && !isReset(err) {
		s.protocolError("datanode %s: %v", remote, err)
	}
}

func (s *Server) opResponse(w io.Writer, st pb.Status, msg string, info *pb.ReadOpChecksumInfoProto) error {
	resp := &pb.BlockOpResponseProto{Status: st.Enum(), ReadOpChecksumInfo: info}
	// firstBadLink is always sent, as a real datanode does: the client reads
	// at least five bytes for this message.
	resp.FirstBadLink = proto.String("")
	if msg != "" {
		resp.Message = proto.String(msg)
	}
	b, err := appendDelimited(nil, resp)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// writeBlock receives one block: it answers the op, then reads packets,
// checks their offsets and checksums, stores the data and acknowledges each
// packet, until the last packet of the block.
func (s *Server) writeBlock(c net.Conn, br *bufio.Reader, req *pb.OpWriteBlockProto) error {
	eb := req.GetHeader().GetBaseHeader().GetBlock()
	s.mu.Lock()
	b := s.blocks[eb.GetBlockId()]
	var refuse string
	unknown := b == nil || eb.GetPoolId() != blockPool
	switch {
	case unknown:
		refuse = fmt.Sprintf("block %s:%d was not allocated by the namenode (or its file was deleted)", eb.GetPoolId(), eb.GetBlockId())
	case req.GetStage() != pb.OpWriteBlockProto_PIPELINE_SETUP_CREATE:
		refuse = fmt.Sprintf("block %d: stage %v is not supported by hdfstest (no append, no pipeline recovery)", eb.GetBlockId(), req.GetStage())
	case b.writing || b.finalized || len(b.data) > 0:
		refuse = fmt.Sprintf("block %d is already being written or finalized", eb.GetBlockId())
	default:
		b.writing = true
	}
	s.mu.Unlock()
	if refuse != "" {
		s.opResponse(c, pb.Status_ERROR, refuse, nil)
		if unknown {
			// The file was deleted while its writer was between blocks (an
			// aborted checkpoint): a real datanode refuses too. Not a
			// protocol error.
			return nil
		}
		return errors.New(refuse)
	}
	defer func() {
		s.mu.Lock()
		b.writing = false
		s.mu.Unlock()
	}()
	cs := req.GetRequestedChecksum()
	bpc := int(cs.GetBytesPerChecksum())
	if bpc <= 0 || bpc > 1<<20 {
		msg := fmt.Sprintf("block %d: bytesPerChecksum %d outside [1, 1 MiB]", b.id, bpc)
		s.opResponse(c, pb.Status_ERROR_INVALID, msg, nil)
		return errors.New(msg)
	}
	if err := s.opResponse(c, pb.Status_SUCCESS, "", nil); err != nil {
		return err
	}
	var received int64
	for {
		p, err := readPacket(br)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				// The client gave up on the block (it aborts by closing the
				// connection, possibly mid-packet): not a protocol error.
				// The block stays unfinalized.
				return errClientGone
			}
			return fmt.Errorf("block %d: %w", b.id, err)
		}
		h := p.header
		if h.GetSeqno() == heartbeatSeqno {
			if err := s.ack(c, heartbeatSeqno, pb.Status_SUCCESS); err != nil {
				return err
			}
			continue
		}
		if h.GetOffsetInBlock() != received {
			s.ack(c, h.GetSeqno(), pb.Status_ERROR)
			return fmt.Errorf("block %d: packet seqno %d at offset %d, the block holds %d bytes", b.id, h.GetSeqno(), h.GetOffsetInBlock(), received)
		}
		if err := p.verify(cs.GetType(), bpc); err != nil {
			s.ack(c, h.GetSeqno(), pb.Status_ERROR_CHECKSUM)
			return fmt.Errorf("block %d: %w", b.id, err)
		}
		f := s.currentFaults()
		if f.DropWriteAfter > 0 && received+int64(len(p.data)) > f.DropWriteAfter {
			s.mu.Lock()
			s.drops++
			s.mu.Unlock()
			c.Close()
			return errDropped
		}
		last := h.GetLastPacketInBlock()
		s.mu.Lock()
		b.data = append(b.data, p.data...)
		if last {
			b.finalized = true
		}
		s.mu.Unlock()
		received += int64(len(p.data))
		if !s.sleep(f.AckDelay) {
			return net.ErrClosed
		}
		if err := s.ack(c, h.GetSeqno(), pb.Status_SUCCESS); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

func (s *Server) ack(w io.Writer, seqno int64, st pb.Status) error {
	b, err := appendDelimited(nil, &pb.PipelineAckProto{Seqno: proto.Int64(seqno), Reply: []pb.Status{st}})
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	s.mu.Lock()
	s.acks++
	s.mu.Unlock()
	return nil
}

// readBlock sends the range of a finalized block: packets of whole 512-byte
// chunks from the chunk that holds the offset, each with CRC32C checksums,
// then an empty last packet.
func (s *Server) readBlock(c net.Conn, br *bufio.Reader, req *pb.OpReadBlockProto) error {
	const bpc = 512
	eb := req.GetHeader().GetBaseHeader().GetBlock()
	s.mu.Lock()
	b := s.blocks[eb.GetBlockId()]
	var data []byte
	var refuse string
	switch {
	case b == nil || eb.GetPoolId() != blockPool:
		refuse = fmt.Sprintf("block %s:%d not found", eb.GetPoolId(), eb.GetBlockId())
	case !b.finalized:
		refuse = fmt.Sprintf("block %d is not finalized (%d bytes so far)", b.id, len(b.data))
	default:
		data = b.data // immutable once finalized
	}
	s.mu.Unlock()
	if refuse != "" {
		s.opResponse(c, pb.Status_ERROR, refuse, nil)
		return nil // a client error, answered
	}
	off, n := req.GetOffset(), req.GetLen()
	if off > uint64(len(data)) {
		msg := fmt.Sprintf("block %d: offset %d beyond its %d bytes", b.id, off, len(data))
		s.opResponse(c, pb.Status_ERROR_INVALID, msg, nil)
		return nil
	}
	end := uint64(len(data))
	if n < end-off {
		end = off + n
	}
	start := off - off%bpc
	bw := bufio.NewWriterSize(c, 128<<10)
	info := &pb.ReadOpChecksumInfoProto{
		Checksum:    &pb.ChecksumProto{Type: pb.ChecksumTypeProto_CHECKSUM_CRC32C.Enum(), BytesPerChecksum: proto.Uint32(bpc)},
		ChunkOffset: proto.Uint64(start),
	}
	if err := s.opResponse(bw, pb.Status_SUCCESS, "", info); err != nil {
		return err
	}
	var seqno int64
	buf := make([]byte, 0, readPacketSize+4096)
	for pos := start; pos < end; seqno++ {
		next := min(pos+readPacketSize, end)
		var err error
		if buf, err = appendPacket(buf[:0], int64(pos), seqno, false, data[pos:next], bpc); err != nil {
			return err
		}
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		pos = next
	}
	buf, err := appendPacket(buf[:0], int64(end), seqno, true, nil, bpc)
	if err != nil {
		return err
	}
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	// A Java client answers with ClientReadStatusProto; colinmarc/hdfs
	// closes the connection instead. Either is fine.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if st, err := readDelimited(br, 64); err == nil {
		var rs pb.ClientReadStatusProto
		if err := proto.Unmarshal(st, &rs); err != nil {
			return fmt.Errorf("block %d: ClientReadStatusProto: %w", b.id, err)
		}
	}
	return nil
}
