package kafka

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-stream/weir/dataflow"
)

// linkProbeInterval is how often a running source or sink asks its brokers
// for the topic's metadata to report whether it reaches them. Sarama
// retries a lost broker quietly (a sink's producer for seconds, a source
// until its stall timeout); the probe makes that visible in the job status
// at once. One small metadata request per subtask and interval.
var linkProbeInterval = 2 * time.Second

// linkTarget names what a link reaches, for people.
func linkTarget(brokers []string, topic string) string {
	return fmt.Sprintf("kafka %s topic %s", strings.Join(brokers, ","), topic)
}

// newLink registers a link for node on the task's counters (nil without
// counters: unit tests that do not look).
func newLink(ctx *dataflow.Context, node string, brokers []string, topic string) *dataflow.Link {
	if ctx == nil || ctx.Metrics == nil {
		return nil
	}
	return ctx.Metrics.Link(node, linkTarget(brokers, topic))
}

// linkWatch probes one client's brokers until stopped.
type linkWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// watchLink reports link as connected now (the client has just connected)
// and probes every linkProbeInterval until stop. A nil link: no watch.
func watchLink(client sarama.Client, topic string, link *dataflow.Link) *linkWatch {
	w := &linkWatch{done: make(chan struct{})}
	if link == nil {
		w.cancel = func() {}
		close(w.done)
		return w
	}
	link.Connected()
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() {
		defer close(w.done)
		t := time.NewTicker(linkProbeInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := client.RefreshMetadata(topic)
			if ctx.Err() != nil {
				return // stopped while probing: the client may be closing
			}
			if err != nil {
				link.Unreachable(time.Now(), err)
			} else {
				link.Connected()
			}
		}
	}()
	return w
}

// stop ends the probing and waits for it (a probe in flight is bounded by
// the client's dial and read timeouts).
func (w *linkWatch) stop() {
	if w == nil {
		return
	}
	w.cancel()
	<-w.done
}

// blockStart and blockEnd count a wait on the broker as backpressure on
// the task's counters (nil: not counted).
func blockStart(c *dataflow.Counters) bool {
	if c == nil {
		return false
	}
	return c.BlockStart()
}

func blockEnd(c *dataflow.Counters, started bool) {
	if c != nil {
		c.BlockEnd(started)
	}
}
