package sdk_test

import (
	"fmt"
	"time"

	"github.com/weir-stream/weir/sdk"
)

// Dedup forwards the first record of each id and drops repeats for an
// hour: a Value with a TTL.
type Dedup struct{ seen *sdk.Value[bool] }

func (d *Dedup) Open(ctx *sdk.OpenContext) (err error) {
	d.seen, err = sdk.NewValue(ctx, sdk.ValueDescriptor[bool]{Name: "seen", TTL: sdk.TTL{Duration: time.Hour}})
	return err
}

func (d *Dedup) ProcessElement(ctx *sdk.Context, in sdk.Record, out *sdk.Collector[sdk.Record]) error {
	if seen, _, err := d.seen.Get(); err != nil || seen {
		return err
	}
	if err := d.seen.Update(true); err != nil {
		return err
	}
	return out.Emit(in)
}

func (d *Dedup) OnTimer(*sdk.Context, sdk.Timer, *sdk.Collector[sdk.Record]) error { return nil }

// Deduplication by id with a state TTL, run in a TestHarness.
func Example_dedup() {
	h, err := sdk.NewTestHarness[sdk.Record, sdk.Record](&Dedup{}, sdk.WithProcessingTime(0))
	if err != nil {
		panic(err)
	}
	for i, id := range []string{"a", "b", "a", "a", "c"} {
		_ = h.Process(id, int64(i), sdk.NewRecord(map[string]any{"id": id, "n": i}))
	}
	// An hour later "a" is forgotten.
	_ = h.SetProcessingTime(time.Hour.Milliseconds())
	_ = h.Process("a", 9, sdk.NewRecord(map[string]any{"id": "a", "n": 9}))
	out, _ := h.Output()
	for _, e := range out {
		fmt.Println(e.Value)
	}
	// Output:
	// {id: a, n: 0}
	// {id: b, n: 1}
	// {id: c, n: 4}
	// {id: a, n: 9}
}

// Click is an input record; fields map by their weir tags.
type Click struct {
	User string `weir:"user"`
	URL  string `weir:"url"`
}

// MinuteCount is an output record.
type MinuteCount struct {
	User   string `weir:"user"`
	Minute int64  `weir:"minute"`
	Clicks int64  `weir:"clicks"`
}

// ClicksPerMinute counts each user's clicks per event-time minute with a
// Map from minute to count and an event-time timer at the minute's end.
type ClicksPerMinute struct{ counts *sdk.Map[int64, int64] }

func (c *ClicksPerMinute) Open(ctx *sdk.OpenContext) (err error) {
	c.counts, err = sdk.NewMap(ctx, sdk.MapDescriptor[int64, int64]{Name: "counts"})
	return err
}

func (c *ClicksPerMinute) ProcessElement(ctx *sdk.Context, in Click, _ *sdk.Collector[MinuteCount]) error {
	minute := ctx.Timestamp() / 60_000
	n, _, err := c.counts.Get(minute)
	if err != nil {
		return err
	}
	ctx.Timers().RegisterEventTimeTimer((minute+1)*60_000 - 1) // once per minute and key
	return c.counts.Put(minute, n+1)
}

func (c *ClicksPerMinute) OnTimer(ctx *sdk.Context, t sdk.Timer, out *sdk.Collector[MinuteCount]) error {
	minute := t.Time / 60_000
	n, _, err := c.counts.Get(minute)
	if err != nil {
		return err
	}
	if err := c.counts.Remove(minute); err != nil {
		return err
	}
	return out.Emit(MinuteCount{User: ctx.Key().(string), Minute: minute, Clicks: n})
}

// A count per key and minute with map state and event-time timers,
// snapshotted and restored half way.
func Example_countPerMinute() {
	h, _ := sdk.NewTestHarness[Click, MinuteCount](&ClicksPerMinute{})
	_ = h.Process("ann", 1_000, Click{User: "ann", URL: "/"})
	_ = h.Process("bob", 2_000, Click{User: "bob", URL: "/a"})
	_ = h.Process("ann", 61_000, Click{User: "ann", URL: "/b"})
	snap, _ := h.Snapshot()

	// A new run restores the snapshot, state and timers.
	h, _ = sdk.NewTestHarness[Click, MinuteCount](&ClicksPerMinute{}, sdk.WithRestore(snap))
	_ = h.Process("ann", 3_000, Click{User: "ann", URL: "/c"})
	_ = h.Watermark(120_000)
	out, _ := h.Output()
	for _, e := range out {
		fmt.Printf("%s minute %d: %d clicks (event time %d)\n", e.Value.User, e.Value.Minute, e.Value.Clicks, e.Time)
	}
	// Output:
	// ann minute 0: 2 clicks (event time 59999)
	// bob minute 0: 1 clicks (event time 59999)
	// ann minute 1: 1 clicks (event time 119999)
}

// AlertConfig is an operator's config: decoded from the spec's
// process.config and validated when the job is submitted.
type AlertConfig struct {
	Threshold float64 `json:"threshold"`
}

func (c AlertConfig) Validate() error {
	if c.Threshold <= 0 {
		return sdk.ConfigError("threshold", "must be positive, got %v", c.Threshold)
	}
	return nil
}

// Alert emits the records above a threshold to a side output.
type Alert struct {
	cfg    AlertConfig
	alerts *sdk.Counter
}

var alerts = sdk.NewSideOutput[sdk.Record]("alerts")

func (a *Alert) Open(ctx *sdk.OpenContext) error {
	a.alerts = ctx.Metrics().Counter("alerts_total", "Records above the threshold.")
	return nil
}

func (a *Alert) ProcessElement(ctx *sdk.Context, in sdk.Record, out *sdk.Collector[sdk.Record]) error {
	if v, _ := in.Get("amount").(float64); v > a.cfg.Threshold {
		a.alerts.Inc()
		return alerts.Emit(ctx, in)
	}
	return out.Emit(in)
}

func (a *Alert) OnTimer(*sdk.Context, sdk.Timer, *sdk.Collector[sdk.Record]) error { return nil }

// An operator registers from an init function, with a factory taking its
// config. A spec then names it:
//
//	pipeline:
//	  # ... a source
//	  - key_by: account
//	  - name: alert
//	    process: {operator: acme.alert, config: {threshold: 500}}
//	  - inputs: [alert.alerts]
//	    sink: {stdout: {}}
func init() {
	sdk.RegisterProcess("acme.alert", func(cfg AlertConfig) (sdk.ProcessFunction[sdk.Record, sdk.Record], error) {
		return &Alert{cfg: cfg}, nil
	})
}

// The operators registered in the binary.
func ExampleOperators() {
	for _, op := range sdk.Operators() {
		fmt.Println(op.ID, op.Kind)
	}
	// Output:
	// acme.alert process
}
