package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-stream/weir/connectors/eventtime"
	"github.com/weir-stream/weir/connectors/format"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/expr"
	"github.com/weir-stream/weir/dataflow/spec"
)

// Defaults of the source's spec fields.
const (
	StartEarliest   = "earliest"
	StartLatest     = "latest"
	ReadCommitted   = "read_committed"
	ReadUncommitted = "read_uncommitted"

	defaultWatermarkInterval = 200 * time.Millisecond
	defaultIdleTimeout       = 30 * time.Second
)

const (
	// drainBatch is how many messages are taken from one partition before
	// looking at the next, so one busy partition cannot starve the others.
	drainBatch = 256
	// fetchMaxWait is the broker's long-poll time of a fetch.
	fetchMaxWait = 250 * time.Millisecond
	// boundedQuiet: in bounded mode a partition below its end offset that
	// delivered nothing for this long (channel empty) is probed: if nothing
	// before its end is visible to this reader (only transaction markers,
	// aborted records), it is finished. sarama does not expose its fetch
	// position, so this is how the end is recognised.
	boundedQuiet = 2 * fetchMaxWait
	// errStreakGap: fetch errors further apart than this are separate
	// incidents (sarama retries a lost broker every few seconds).
	errStreakGap = 10 * time.Second
	// defaultStallTimeout: a partition that has failed to fetch for this
	// long fails the task, so the job restarts (and reports why) rather
	// than stall silently.
	defaultStallTimeout = 60 * time.Second
)

// Source reads one Kafka topic. Subtask i of n reads the partitions p with
// p % n == i; there is no consumer group and nothing is committed to Kafka:
// positions live in weir's checkpoints (see Offsets and SetStartOffsets).
type Source struct {
	node        string
	cfg         spec.KafkaSource // defaults applied
	sec         *Security
	subtask     int
	parallelism int
	onError     dataflow.ErrorHandler
	logger      *slog.Logger

	etField     string
	etProg      *expr.Program
	wmInterval  time.Duration
	idleTimeout time.Duration
	outOfOrder  time.Duration

	start   map[int32]int64
	offsets map[int32]int64
	// startTs is the largest event time per partition from a restored
	// checkpoint; it seeds the tracker so watermarks do not go back.
	startTs map[int32]int64
	// lastSnap is the position of the last Snapshot, for SnapshotSummary.
	lastSnap []dataflow.PartitionOffset

	// lk is the task's checkpoint lock (see checkpointLocker), held around
	// every change of the position and the Emit that goes with it.
	lk sync.Locker

	// link reports whether the brokers answer (see watchLink).
	link *dataflow.Link

	// Injected for tests.
	now           func() time.Time
	connectBudget time.Duration
	stallTimeout  time.Duration

	// Run state, owned by the Run goroutine.
	client  sarama.Client
	iso     sarama.IsolationLevel
	dec     decoder
	tracker *eventtime.Tracker
	idle    bool
}

// NewSource builds the source of a spec node with a kafka source. It checks
// the settings and compiles the event-time expression; it does not connect.
func NewSource(node *spec.Node, ctx *dataflow.Context) (dataflow.Source, error) {
	if node == nil || node.Source == nil || node.Source.Kafka == nil {
		return nil, fmt.Errorf("%w: node is not a kafka source", ErrConfig)
	}
	k := *node.Source.Kafka
	k.Brokers = slices.Clone(k.Brokers)
	if k.Format == "" {
		k.Format = FormatJSON
	}
	if k.StartFrom == "" {
		k.StartFrom = StartEarliest
	}
	if k.Isolation == "" {
		k.Isolation = ReadCommitted
	}
	var problems []string
	if len(k.Brokers) == 0 {
		problems = append(problems, "brokers is empty")
	}
	if k.Topic == "" {
		problems = append(problems, "topic is empty")
	}
	if !validFormat(k.Format) {
		problems = append(problems, fmt.Sprintf("format %q: want json, raw, avro, protobuf or json_schema", k.Format))
	}
	if k.StartFrom != StartEarliest && k.StartFrom != StartLatest {
		problems = append(problems, fmt.Sprintf("start_from %q: want earliest or latest", k.StartFrom))
	}
	if k.Isolation != ReadCommitted && k.Isolation != ReadUncommitted {
		problems = append(problems, fmt.Sprintf("isolation %q: want read_committed or read_uncommitted", k.Isolation))
	}
	s := &Source{
		lk:            noLock{},
		node:          node.Name,
		cfg:           k,
		now:           time.Now,
		connectBudget: connectTimeout,
		stallTimeout:  defaultStallTimeout,
		dec:           decoder{raw: k.Format == FormatRaw},
	}
	if k.Upsert {
		s.dec.upsertKey = k.KeyField
	}
	if f := format.Format(k.Format); f.Valid() {
		if err := s.dec.setFramed(f, k.SchemaRegistry); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if sec, err := newSecurity(k.TLS, k.SASL); err != nil {
		problems = append(problems, err.Error())
	} else {
		s.sec = sec
	}
	if sch, err := dataflow.NewSchema(node.Source.Schema); err != nil {
		problems = append(problems, err.Error())
	} else {
		s.dec.schema = sch
	}
	if et := node.Source.EventTime; et != nil {
		prog, err := expr.Compile(et.Field, node.Source.Schema, expr.Number)
		if err != nil {
			problems = append(problems, "event_time.field: "+err.Error())
		}
		s.etField, s.etProg = et.Field, prog
		s.outOfOrder = et.MaxOutOfOrderness.D()
		s.wmInterval = et.WatermarkInterval.D()
		if s.wmInterval <= 0 {
			s.wmInterval = defaultWatermarkInterval
		}
		s.idleTimeout = defaultIdleTimeout
		if et.IdleTimeout != nil {
			s.idleTimeout = et.IdleTimeout.D()
		}
		if s.outOfOrder < 0 || s.idleTimeout < 0 {
			problems = append(problems, "event_time: durations must not be negative")
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: kafka source %q: %s", ErrConfig, node.Name, strings.Join(problems, "; "))
	}
	s.setContext(ctx)
	return s, nil
}

func (s *Source) setContext(ctx *dataflow.Context) {
	if ctx == nil {
		ctx = &dataflow.Context{}
	}
	s.subtask, s.parallelism = ctx.Subtask, ctx.Parallelism
	if s.parallelism < 1 {
		s.parallelism = 1
	}
	s.onError = ctx.OnError
	if s.onError == nil {
		s.onError = dataflow.FailOnError{Node: s.node}
	}
	s.logger = ctx.Logger
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.logger = s.logger.With("node", s.node, "topic", s.cfg.Topic, "subtask", s.subtask)
}

// Open takes the subtask's place in the job from ctx.
func (s *Source) Open(ctx *dataflow.Context) error {
	if ctx != nil {
		s.setContext(ctx)
	}
	if s.subtask < 0 || s.subtask >= s.parallelism {
		return fmt.Errorf("%w: kafka source %q: subtask %d of %d", ErrConfig, s.node, s.subtask, s.parallelism)
	}
	if s.link == nil {
		s.link = newLink(ctx, s.node, s.cfg.Brokers, s.cfg.Topic)
	}
	return nil
}

// SetStartOffsets makes Run start each listed partition at the given offset
// (the next offset to read, as returned by Offsets), overriding start_from.
// Partitions not listed start per start_from. Call before Run, e.g. when
// restoring from a checkpoint.
func (s *Source) SetStartOffsets(offsets map[int32]int64) {
	s.start = maps.Clone(offsets)
}

// Offsets returns, for every partition this subtask reads, the next offset to
// read: one past the last record emitted (or handled by the error policy),
// or the resolved start offset before any. A record's offset counts from
// the moment it is handed to out.Emit, so a snapshot taken inside Emit
// counts it. Call it from the Run goroutine or under the checkpoint lock;
// before Run has resolved its partitions it returns nil.
func (s *Source) Offsets() map[int32]int64 {
	if s.offsets == nil {
		return nil
	}
	return maps.Clone(s.offsets)
}

// checkpointLocker is implemented by the task's SourceOutput: the lock it
// holds while it snapshots the source and injects a barrier.
type checkpointLocker interface{ CheckpointLock() sync.Locker }

type noLock struct{}

func (noLock) Lock()   {}
func (noLock) Unlock() {}

// stateVersion is the first byte of the source's snapshot.
const stateVersion = 1

// maxStatePartitions bounds the partitions a snapshot may claim.
const maxStatePartitions = 1 << 20

// Snapshot implements dataflow.Snapshotter: for every partition of this
// subtask the next offset to read and the largest event time seen. The
// task calls it under its checkpoint lock, between two records. Before Run
// has resolved its partitions it returns the restored position.
//
// Encoding, version 1: the version byte, the topic (uvarint length and
// bytes), the number of partitions (uvarint), then per partition in
// ascending order the partition, the next offset and the largest event
// time (zig-zag varints; math.MinInt64 when none was seen).
func (s *Source) Snapshot(int64) ([]byte, error) {
	type part struct {
		p        int32
		off, mts int64
	}
	var parts []part
	if s.offsets != nil {
		for p, off := range s.offsets {
			mts := eventtime.NoWatermark
			if s.tracker != nil {
				mts = s.tracker.MaxTimestamp(p)
			} else if ts, ok := s.startTs[p]; ok {
				mts = ts
			}
			parts = append(parts, part{p, off, mts})
		}
	} else {
		for p, off := range s.start {
			if int(p)%s.parallelism != s.subtask {
				continue
			}
			mts, ok := s.startTs[p]
			if !ok {
				mts = eventtime.NoWatermark
			}
			parts = append(parts, part{p, off, mts})
		}
	}
	slices.SortFunc(parts, func(a, b part) int { return int(a.p) - int(b.p) })
	b := make([]byte, 0, 8+len(s.cfg.Topic)+len(parts)*24)
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(len(s.cfg.Topic)))
	b = append(b, s.cfg.Topic...)
	b = binary.AppendUvarint(b, uint64(len(parts)))
	s.lastSnap = s.lastSnap[:0]
	for _, p := range parts {
		b = binary.AppendVarint(b, int64(p.p))
		b = binary.AppendVarint(b, p.off)
		b = binary.AppendVarint(b, p.mts)
		s.lastSnap = append(s.lastSnap, dataflow.PartitionOffset{Topic: s.cfg.Topic, Partition: p.p, Offset: p.off})
	}
	return b, nil
}

// SnapshotSummary implements dataflow.SnapshotSummarizer: the offsets of
// the last Snapshot.
func (s *Source) SnapshotSummary() dataflow.SnapshotSummary {
	return dataflow.SnapshotSummary{Offsets: slices.Clone(s.lastSnap)}
}

// Restore implements dataflow.Snapshotter. It keeps, from every given
// state, the partitions this subtask reads (p % n == i), so restoring with
// another parallelism works when given every old subtask's state. It seeds
// the start offsets (as SetStartOffsets) and each partition's largest event
// time. Partitions of another topic are ignored; partitions without a
// restored offset start per start_from. Call before Run.
func (s *Source) Restore(states [][]byte) error {
	start := map[int32]int64{}
	ts := map[int32]int64{}
	for i, st := range states {
		if len(st) == 0 {
			continue
		}
		topic, parts, err := decodeState(st)
		if err != nil {
			return fmt.Errorf("kafka source %q: restore: state %d of %d: %w", s.node, i+1, len(states), err)
		}
		if topic != s.cfg.Topic {
			s.logger.Warn("kafka source: ignoring restored offsets of another topic", "restored_topic", topic)
			continue
		}
		for _, p := range parts {
			if int(p.p)%s.parallelism != s.subtask {
				continue
			}
			start[p.p] = p.off
			ts[p.p] = p.mts
		}
	}
	s.start, s.startTs = start, ts
	return nil
}

type statePart struct {
	p        int32
	off, mts int64
}

var errBadState = errors.New("corrupt kafka source state")

func decodeState(b []byte) (string, []statePart, error) {
	if b[0] != stateVersion {
		return "", nil, fmt.Errorf("%w: unknown version %d", errBadState, b[0])
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, fmt.Errorf("%w: topic", errBadState)
	}
	topic := string(b[k : k+int(n)])
	b = b[k+int(n):]
	cnt, k := binary.Uvarint(b)
	if k <= 0 || cnt > maxStatePartitions {
		return "", nil, fmt.Errorf("%w: partition count", errBadState)
	}
	b = b[k:]
	parts := make([]statePart, 0, min(cnt, 1024))
	for range cnt {
		var v [3]int64
		for j := range v {
			x, k := binary.Varint(b)
			if k <= 0 {
				return "", nil, fmt.Errorf("%w: truncated", errBadState)
			}
			v[j], b = x, b[k:]
		}
		if v[0] < 0 || v[0] > math.MaxInt32 || v[1] < 0 {
			return "", nil, fmt.Errorf("%w: partition %d offset %d", errBadState, v[0], v[1])
		}
		parts = append(parts, statePart{int32(v[0]), v[1], v[2]})
	}
	if len(b) != 0 {
		return "", nil, fmt.Errorf("%w: %d trailing bytes", errBadState, len(b))
	}
	return topic, parts, nil
}

// Close releases nothing: Run releases its connections before it returns.
func (s *Source) Close() error { return nil }

func (s *Source) saramaConfig() *sarama.Config {
	c := baseConfig(s.node)
	s.sec.Apply(c)
	c.Metadata.AllowAutoTopicCreation = false // a reader must not create the topic
	c.Consumer.Return.Errors = true
	c.Consumer.MaxWaitTime = fetchMaxWait
	c.Consumer.Fetch.Default = 1 << 20
	c.ChannelBufferSize = 1024
	c.Consumer.IsolationLevel = sarama.ReadUncommitted
	if s.cfg.Isolation == ReadCommitted {
		c.Consumer.IsolationLevel = sarama.ReadCommitted
	}
	return c
}

func (s *Source) errorf(format string, args ...any) error {
	return fmt.Errorf("kafka source %q: "+format, append([]any{s.node}, args...)...)
}

// assigned returns the partitions of subtask i of n.
func assigned(parts []int32, i, n int) []int32 {
	var mine []int32
	for _, p := range parts {
		if int(p)%n == i {
			mine = append(mine, p)
		}
	}
	slices.Sort(mine)
	return mine
}

type partState struct {
	p        int32
	pc       sarama.PartitionConsumer
	end      int64 // bounded mode: stop here
	done     bool
	lastErr  error
	lastData time.Time // last time the partition had data for us
	errSince time.Time // start of the current streak of fetch errors
	errLast  time.Time
}

// Run reads until ctx is cancelled (nil), the bounded end is reached (nil),
// or a failure (an error naming the topic, and the partition when known).
func (s *Source) Run(ctx context.Context, out dataflow.SourceOutput) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.errorf("internal error: %v", r)
		}
	}()
	if cl, ok := out.(checkpointLocker); ok {
		s.lk = cl.CheckpointLock()
	}
	conf := s.saramaConfig()
	client, parts, err := connect(ctx, s.cfg.Brokers, s.cfg.Topic, conf, s.connectBudget)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return s.errorf("%w", err)
	}
	defer client.Close()
	watch := watchLink(client, s.cfg.Topic, s.link)
	defer watch.stop()

	mine := assigned(parts, s.subtask, s.parallelism)
	s.logger.Debug("kafka source assigned partitions", "partitions", mine, "of", len(parts))
	if len(mine) == 0 {
		s.lk.Lock()
		s.offsets = map[int32]int64{}
		s.lk.Unlock()
		if s.cfg.Bounded {
			return nil
		}
		if err := out.MarkIdle(true); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}

	iso := conf.Consumer.IsolationLevel
	s.client, s.iso = client, iso
	s.dec.ctx = ctx
	earliest, err := listOffsets(client, s.cfg.Topic, mine, sarama.OffsetOldest, iso)
	if err != nil {
		return s.errorf("topic %q: list earliest offsets: %w", s.cfg.Topic, err)
	}
	latest, err := listOffsets(client, s.cfg.Topic, mine, sarama.OffsetNewest, iso)
	if err != nil {
		return s.errorf("topic %q: list latest offsets: %w", s.cfg.Topic, err)
	}
	offsets := make(map[int32]int64, len(mine))
	for _, p := range mine {
		off, ok := s.start[p]
		switch {
		case ok && off < earliest[p]:
			return s.errorf("topic %q partition %d: start offset %d is before the earliest available offset %d (deleted by retention?)", s.cfg.Topic, p, off, earliest[p])
		case ok && off > latest[p]:
			return s.errorf("topic %q partition %d: start offset %d is beyond the end of the partition (%d); was the topic recreated?", s.cfg.Topic, p, off, latest[p])
		case ok:
		case s.cfg.StartFrom == StartLatest:
			off = latest[p]
		default:
			off = earliest[p]
		}
		offsets[p] = off
	}

	now := s.now()
	s.lk.Lock()
	s.offsets = offsets
	if s.etProg != nil {
		s.tracker = eventtime.NewTracker(s.outOfOrder, s.idleTimeout)
		for _, p := range mine {
			s.tracker.AddPartition(p, now)
			if ts, ok := s.startTs[p]; ok && ts != eventtime.NoWatermark {
				s.tracker.Restore(p, ts, now)
			}
		}
	}
	s.lk.Unlock()

	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return s.errorf("topic %q: %w", s.cfg.Topic, err)
	}
	defer consumer.Close()
	var states []*partState
	defer func() {
		for _, ps := range states {
			ps.pc.AsyncClose()
		}
		for _, ps := range states {
			for range ps.pc.Messages() { //nolint:revive // drain until sarama closes it
			}
			for range ps.pc.Errors() { //nolint:revive
			}
		}
	}()
	for _, p := range mine {
		ps := &partState{p: p, end: -1, lastData: now}
		if s.cfg.Bounded {
			ps.end = latest[p]
			if s.offsets[p] >= ps.end {
				continue
			}
		}
		pc, err := consumer.ConsumePartition(s.cfg.Topic, p, s.offsets[p])
		if err != nil {
			return s.errorf("topic %q partition %d offset %d: %w", s.cfg.Topic, p, s.offsets[p], err)
		}
		ps.pc = pc
		states = append(states, ps)
	}
	return s.loop(ctx, out, states)
}

// loop fans the partitions in on this goroutine: it drains whatever sarama
// has buffered, partition by partition, and blocks in one select over all of
// them only when nothing is buffered.
func (s *Source) loop(ctx context.Context, out dataflow.SourceOutput, states []*partState) error {
	interval := s.wmInterval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	active := slices.Clone(states)
	var cases []reflect.SelectCase
	rebuild := true
	for {
		if len(active) == 0 && s.cfg.Bounded {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		got := 0
		for _, ps := range active {
			n, err := s.drain(ps, out)
			if err != nil {
				return err
			}
			got += n
			if err := s.drainErrors(ps); err != nil {
				return err
			}
		}
		if s.cfg.Bounded {
			if n := removeDone(active); n != len(active) {
				active, rebuild = active[:n], true
				continue
			}
		}
		select {
		case <-ticker.C:
			if err := s.tick(out, active); err != nil {
				return err
			}
			continue
		default:
		}
		if got > 0 {
			continue
		}
		// Nothing buffered anywhere: block until something arrives.
		if rebuild {
			cases = s.selectCases(ctx, ticker, active)
			rebuild = false
		}
		chosen, v, ok := reflect.Select(cases)
		switch {
		case chosen == 0: // ctx done
			return nil
		case chosen == 1: // tick
			if err := s.tick(out, active); err != nil {
				return err
			}
		case (chosen-2)%2 == 0: // a partition's messages
			ps := active[(chosen-2)/2]
			if !ok {
				return s.stopped(ps)
			}
			if err := s.handle(ps, v.Interface().(*sarama.ConsumerMessage), s.now(), out); err != nil {
				return err
			}
		default: // a partition's errors
			ps := active[(chosen-2)/2]
			if ok {
				if err := s.consumerError(ps, v.Interface().(*sarama.ConsumerError)); err != nil {
					return err
				}
			}
		}
	}
}

func (s *Source) selectCases(ctx context.Context, ticker *time.Ticker, active []*partState) []reflect.SelectCase {
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ticker.C)},
	}
	for _, ps := range active {
		cases = append(cases,
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ps.pc.Messages())},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ps.pc.Errors())})
	}
	return cases
}

// drain handles what sarama has buffered for one partition, up to
// drainBatch messages, without blocking.
func (s *Source) drain(ps *partState, out dataflow.SourceOutput) (int, error) {
	n := 0
	var now time.Time // one clock read per batch, not per message
	for n < drainBatch && !ps.done {
		select {
		case m, ok := <-ps.pc.Messages():
			if !ok {
				return n, s.stopped(ps)
			}
			if n == 0 {
				now = s.now()
			}
			n++
			if err := s.handle(ps, m, now, out); err != nil {
				return n, err
			}
		default:
			return n, nil
		}
	}
	return n, nil
}

// removeDone moves finished partitions out of active and stops their
// fetching (the deferred cleanup in Run drains them).
func removeDone(active []*partState) int {
	n := 0
	for _, ps := range active {
		if ps.done {
			ps.pc.AsyncClose()
			continue
		}
		active[n] = ps
		n++
	}
	return n
}

func (s *Source) drainErrors(ps *partState) error {
	for {
		select {
		case e, ok := <-ps.pc.Errors():
			if !ok {
				return nil
			}
			if err := s.consumerError(ps, e); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// consumerError notes an error that sarama retries by itself. Errors in an
// unbroken streak (no data in between, none more than errStreakGap apart)
// for longer than the stall timeout fail the task.
func (s *Source) consumerError(ps *partState, e *sarama.ConsumerError) error {
	if e == nil {
		return nil
	}
	now := s.now()
	ps.lastErr = e.Err
	if ps.errSince.IsZero() || now.Sub(ps.errLast) > errStreakGap || ps.lastData.After(ps.errLast) {
		ps.errSince = now
		s.logger.Warn("kafka source fetch error; retrying", "partition", ps.p, "err", e.Err)
	} else {
		s.logger.Debug("kafka source fetch error; retrying", "partition", ps.p, "err", e.Err)
	}
	ps.errLast = now
	if d := now.Sub(ps.errSince); d >= s.stallTimeout {
		return s.errorf("%w: topic %q partition %d at offset %d: no successful fetch from brokers %s for %s: %v",
			ErrBrokersUnreachable, s.cfg.Topic, ps.p, s.offsets[ps.p], strings.Join(s.cfg.Brokers, ","), d.Round(time.Second), e.Err)
	}
	return nil
}

func (s *Source) stopped(ps *partState) error {
	cause := ps.lastErr
	if cause == nil {
		cause = errors.New("consumer closed")
	}
	return s.errorf("topic %q partition %d at offset %d: reading stopped: %w", s.cfg.Topic, ps.p, s.offsets[ps.p], cause)
}

// handle decodes, stamps and emits one message. It holds the checkpoint
// lock throughout, so a barrier falls before the message (its offset not
// yet counted) or after it (emitted and counted), never in between.
func (s *Source) handle(ps *partState, m *sarama.ConsumerMessage, now time.Time, out dataflow.SourceOutput) error {
	s.lk.Lock()
	defer s.lk.Unlock()
	ps.lastData = now
	if s.cfg.Bounded && m.Offset >= ps.end {
		// Past the end seen at start (possible when the end moved
		// between listing offsets and fetching): not ours to emit.
		ps.done = true
		return nil
	}
	rec := dataflow.Record{
		Time:   dataflow.NoTime,
		Origin: dataflow.Origin{Source: s.node, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset},
		Raw:    m, // for dead letters, here or downstream (deadletter.go)
	}
	fields, tombstone, err := s.dec.decodeMessage(m.Key, m.Value)
	if err == nil && s.etProg != nil && !tombstone {
		rec.Fields = fields
		var v any
		if v, err = s.etProg.Eval(fields); err == nil {
			rec.Time, err = eventTimeMillis(v)
			if err != nil {
				err = fmt.Errorf("event_time %q: %w", s.etField, err)
			}
		}
	}
	if err != nil && registryDown(err) {
		// Not this record's fault: every record after it would fail
		// the same way, so the task fails (and the job restarts from
		// its checkpoint) instead of dead-lettering them all. When the
		// task is being stopped the record is left for the next run.
		if s.dec.ctx != nil && s.dec.ctx.Err() != nil {
			return nil
		}
		return s.errorf("topic %q partition %d offset %d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	if err != nil {
		rec.Fields = fields
		if herr := s.onError.Handle(&rec, m.Value, err); herr != nil {
			return herr
		}
	} else {
		rec.Fields = fields
		if s.tracker != nil && !tombstone {
			if wm := s.tracker.Observe(m.Partition, rec.Time, now); wm != eventtime.NoWatermark {
				rec.SourceWatermark = wm
			}
			if s.idle {
				s.idle = false
				if err := out.MarkIdle(false); err != nil {
					return err
				}
			}
		}
		// Counted before Emit, under the lock: a barrier injected
		// inside Emit follows this record.
		s.offsets[m.Partition] = m.Offset + 1
		if err := out.Emit(&rec); err != nil {
			return err
		}
	}
	s.offsets[m.Partition] = m.Offset + 1
	if s.cfg.Bounded && m.Offset+1 >= ps.end {
		ps.done = true
	}
	return nil
}

// tick emits the watermark when it moved, marks the subtask idle when every
// partition is, and in bounded mode finishes partitions that have nothing
// visible left before their end.
func (s *Source) tick(out dataflow.SourceOutput, active []*partState) error {
	now := s.now()
	if s.cfg.Bounded {
		for _, ps := range active {
			if len(ps.pc.Messages()) > 0 {
				ps.lastData = now
				continue
			}
			if now.Sub(ps.lastData) < boundedQuiet {
				continue
			}
			ps.lastData = now
			vis, err := visibleBefore(s.client, s.cfg.Topic, ps.p, s.offsets[ps.p], ps.end, s.iso)
			if err != nil {
				s.logger.Warn("kafka source: probing the end of a bounded partition", "partition", ps.p, "err", err)
				continue
			}
			if !vis {
				s.logger.Debug("kafka source: no visible records before the end", "partition", ps.p, "next", s.offsets[ps.p], "end", ps.end)
				ps.done = true
			}
		}
	}
	if s.tracker == nil {
		return nil
	}
	// The tracker is part of the snapshot: change it under the lock.
	s.lk.Lock()
	defer s.lk.Unlock()
	wm, changed, allIdle := s.tracker.Advance(now)
	if allIdle {
		if !s.idle {
			s.idle = true
			return out.MarkIdle(true)
		}
		return nil
	}
	if changed {
		return out.EmitWatermark(wm)
	}
	return nil
}

// listOffsets asks each partition's leader for the earliest (OffsetOldest)
// or latest (OffsetNewest) offset. With read_committed, latest is the last
// stable offset: records of open transactions are not counted as there.
func listOffsets(client sarama.Client, topic string, parts []int32, which int64, iso sarama.IsolationLevel) (map[int32]int64, error) {
	byLeader := map[*sarama.Broker][]int32{}
	for _, p := range parts {
		b, err := client.Leader(topic, p)
		if err != nil {
			return nil, fmt.Errorf("partition %d: find leader: %w", p, err)
		}
		byLeader[b] = append(byLeader[b], p)
	}
	res := make(map[int32]int64, len(parts))
	for b, ps := range byLeader {
		req := sarama.NewOffsetRequest(client.Config().Version)
		req.IsolationLevel = iso
		for _, p := range ps {
			req.AddBlock(topic, p, which, 1)
		}
		resp, err := b.GetAvailableOffsets(req)
		if err != nil {
			return nil, fmt.Errorf("broker %s: %w", b.Addr(), err)
		}
		for _, p := range ps {
			blk := resp.GetBlock(topic, p)
			if blk == nil {
				return nil, fmt.Errorf("partition %d: %w", p, sarama.ErrIncompleteResponse)
			}
			if !errors.Is(blk.Err, sarama.ErrNoError) {
				return nil, fmt.Errorf("partition %d: %w", p, blk.Err)
			}
			off := blk.Offset
			if req.Version == 0 && len(blk.Offsets) > 0 {
				off = blk.Offsets[0]
			}
			res[p] = off
		}
	}
	return res, nil
}

var (
	_ dataflow.Snapshotter        = (*Source)(nil)
	_ dataflow.SnapshotSummarizer = (*Source)(nil)
)
