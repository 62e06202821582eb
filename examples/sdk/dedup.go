package sdkexamples

import (
	"time"

	"github.com/weir-stream/weir/sdk"
)

// DedupConfig configures example.dedup.
type DedupConfig struct {
	// TTL is how long a key is remembered, as a Go duration ("10m";
	// default 1h).
	TTL string `json:"ttl"`
}

// Validate implements sdk.Validator.
func (c DedupConfig) Validate() error {
	if c.TTL == "" {
		return nil
	}
	d, err := time.ParseDuration(c.TTL)
	if err != nil {
		return sdk.ConfigError("ttl", "want a duration such as 10m, got %q", c.TTL)
	}
	if d <= 0 {
		return sdk.ConfigError("ttl", "must be positive, got %s", d)
	}
	return nil
}

// Dedup forwards the first record of each key and drops the repeats that
// arrive while the key is remembered.
type Dedup struct {
	ttl     time.Duration
	seen    *sdk.Value[bool]
	dropped *sdk.Counter
}

// NewDedup is example.dedup's factory.
func NewDedup(cfg DedupConfig) (sdk.ProcessFunction[sdk.Record, sdk.Record], error) {
	d := &Dedup{ttl: time.Hour}
	if cfg.TTL != "" {
		d.ttl, _ = time.ParseDuration(cfg.TTL) // checked by Validate
	}
	return d, nil
}

// Open declares the state: one flag per key that expires after the TTL.
func (d *Dedup) Open(ctx *sdk.OpenContext) (err error) {
	d.seen, err = sdk.NewValue(ctx, sdk.ValueDescriptor[bool]{Name: "seen", TTL: sdk.TTL{Duration: d.ttl}})
	d.dropped = ctx.Metrics().Counter("dedup_dropped_total", "Repeated records dropped.")
	return err
}

// ProcessElement forwards a key's first record unchanged.
func (d *Dedup) ProcessElement(ctx *sdk.Context, in sdk.Record, out *sdk.Collector[sdk.Record]) error {
	seen, _, err := d.seen.Get()
	if err != nil {
		return err
	}
	if seen {
		d.dropped.Inc()
		return nil
	}
	if err := d.seen.Update(true); err != nil {
		return err
	}
	return out.Emit(in)
}

// OnTimer is not used: the TTL forgets keys.
func (d *Dedup) OnTimer(*sdk.Context, sdk.Timer, *sdk.Collector[sdk.Record]) error { return nil }

func init() { sdk.RegisterProcess("example.dedup", NewDedup) }
