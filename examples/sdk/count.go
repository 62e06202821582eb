package sdkexamples

import (
	"github.com/weir-stream/weir/sdk"
)

// CountConfig configures example.count_per_minute.
type CountConfig struct {
	// WindowMs is the window size in milliseconds (default 60000).
	WindowMs int64 `json:"window_ms"`
}

// Validate implements sdk.Validator.
func (c CountConfig) Validate() error {
	if c.WindowMs < 0 {
		return sdk.ConfigError("window_ms", "must be positive, got %d", c.WindowMs)
	}
	return nil
}

// Event is the input: only the event time and the key matter.
type Event struct{}

// Count is one result: a key's count in the window [Start, End).
type Count struct {
	Key   any   `weir:"key"`
	Start int64 `weir:"window_start"`
	End   int64 `weir:"window_end"`
	Count int64 `weir:"count"`
}

// CountPerMinute counts each key's records per event-time window, like
// the built-in `window: {tumbling: 1m, aggregates: {count: count()}}`:
// a map from window end to count per key, and an event-time timer at each
// window's last millisecond.
type CountPerMinute struct {
	size   int64
	counts *sdk.Map[int64, int64]
}

// NewCountPerMinute is example.count_per_minute's factory.
func NewCountPerMinute(cfg CountConfig) (sdk.ProcessFunction[Event, Count], error) {
	size := cfg.WindowMs
	if size == 0 {
		size = 60_000
	}
	return &CountPerMinute{size: size}, nil
}

// Open declares the counts.
func (c *CountPerMinute) Open(ctx *sdk.OpenContext) (err error) {
	c.counts, err = sdk.NewMap(ctx, sdk.MapDescriptor[int64, int64]{Name: "counts"})
	return err
}

// ProcessElement adds the record to its window, unless the watermark has
// passed the window already (a late record is dropped, as the built-in
// window does without allowed lateness).
func (c *CountPerMinute) ProcessElement(ctx *sdk.Context, _ Event, _ *sdk.Collector[Count]) error {
	ts := ctx.Timestamp()
	if ts == sdk.NoTimestamp {
		return nil
	}
	end := ts - mod(ts, c.size) + c.size
	if end-1 <= ctx.Watermark() {
		return nil
	}
	n, _, err := c.counts.Get(end)
	if err != nil {
		return err
	}
	if n == 0 {
		ctx.Timers().RegisterEventTimeTimer(end - 1)
	}
	return c.counts.Put(end, n+1)
}

// OnTimer emits the window's count and forgets it.
func (c *CountPerMinute) OnTimer(ctx *sdk.Context, t sdk.Timer, out *sdk.Collector[Count]) error {
	end := t.Time + 1
	n, ok, err := c.counts.Get(end)
	if err != nil || !ok {
		return err
	}
	if err := c.counts.Remove(end); err != nil {
		return err
	}
	return out.Emit(Count{Key: ctx.Key(), Start: end - c.size, End: end, Count: n})
}

func mod(t, m int64) int64 {
	r := t % m
	if r < 0 {
		r += m
	}
	return r
}

func init() { sdk.RegisterProcess("example.count_per_minute", NewCountPerMinute) }
