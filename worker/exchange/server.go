package exchange

import (
	"errors"
	"fmt"
	"io"

	"github.com/weir-stream/weir/dataflow"
	datapb "github.com/weir-stream/weir/proto/data/v1"
)

// Channel serves one incoming channel: it waits for the channel's input
// gate, grants credits as the task frees buffer space and hands received
// frames to the gate.
func (x *Exchange) Channel(stream datapb.Exchange_ChannelServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	id := first.GetOpen()
	if id == nil {
		return toStatus(fmt.Errorf("%w: first message must be Open", ErrProtocol))
	}
	k := keyOf(id)
	c, err := x.await(ctx, k)
	if err != nil {
		x.logger.Warn("refusing input channel", "channel", k.String(), "err", err)
		return toStatus(err)
	}
	if err := c.attach(); err != nil {
		return toStatus(err)
	}
	// Recv runs on its own goroutine so the handler can give up on the
	// stream (gate or exchange closed) by returning, which ends the stream
	// and with it the pending Recv.
	recvDone := make(chan error, 1)
	if !x.goAttach(func() { recvDone <- x.receive(stream, c) }) {
		c.fail(ErrClosed)
		return toStatus(ErrClosed)
	}
	for {
		if n := c.credits.take(); n > 0 {
			if err := stream.Send(&datapb.ReceiverMessage{Credits: int32(n)}); err != nil {
				c.fail(fmt.Errorf("%w: granting credits: %v", ErrBroken, err))
				return err
			}
		}
		select {
		case <-c.credits.notify:
		case err := <-recvDone:
			if err != nil {
				c.fail(err)
				x.logger.Debug("input channel failed", "channel", k.String(), "err", err)
			}
			return toStatus(err)
		case <-c.gate.done:
			if c.eosReceived() {
				return nil // the task took everything it wanted
			}
			return toStatus(fmt.Errorf("%w: input gate of %s closed", ErrClosed, k))
		case <-x.closing:
			c.fail(ErrClosed)
			return toStatus(ErrClosed)
		case <-ctx.Done():
			c.fail(fmt.Errorf("%w: %v", ErrBroken, ctx.Err()))
			return ctx.Err()
		}
	}
}

// receive reads frames until the sender closes its side after end of
// stream (nil) or the stream breaks.
func (x *Exchange) receive(stream datapb.Exchange_ChannelServer, c *inputChannel) error {
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if c.eosReceived() {
				return nil
			}
			return fmt.Errorf("%w: sender closed the stream", ErrBroken)
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBroken, err)
		}
		f := m.GetFrame()
		if f == nil {
			return fmt.Errorf("%w: expected a frame", ErrProtocol)
		}
		hint := int(f.GetCount())
		if hint < 0 || hint > len(f.GetElements()) {
			hint = 0
		}
		batch, err := dataflow.AppendDecoded(c.gate.spareBatch(hint), f.GetElements())
		if err != nil {
			return fmt.Errorf("%w: %v", ErrProtocol, err)
		}
		if err := c.push(batch); err != nil {
			return err
		}
	}
}
