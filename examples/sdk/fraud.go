package sdkexamples

import (
	"time"

	"github.com/weir-stream/weir/sdk"
)

// Txn is example.fraud's input record: fields map by their weir tags.
type Txn struct {
	Account string  `weir:"account"`
	Amount  float64 `weir:"amount"`
}

// Alert is the output record.
type Alert struct {
	Account string  `weir:"account"`
	Small   float64 `weir:"small"`
	Large   float64 `weir:"large"`
}

// FraudConfig is decoded from the node's process.config.
type FraudConfig struct {
	Window string `json:"window"` // a Go duration, default 1m
}

// Validate implements sdk.Validator.
func (c FraudConfig) Validate() error {
	if c.Window == "" {
		return nil
	}
	if d, err := time.ParseDuration(c.Window); err != nil || d <= 0 {
		return sdk.ConfigError("window", "want a positive duration such as 1m, got %q", c.Window)
	}
	return nil
}

// Fraud alerts when an account's transaction under $1 is followed by one
// over $500 within the window.
type Fraud struct {
	window int64
	small  *sdk.Value[float64] // the last small amount, if any
	timer  *sdk.Value[int64]   // when that flag expires
}

// Open declares the flag and its timer.
func (f *Fraud) Open(ctx *sdk.OpenContext) (err error) {
	if f.small, err = sdk.NewValue(ctx, sdk.ValueDescriptor[float64]{Name: "small"}); err != nil {
		return err
	}
	f.timer, err = sdk.NewValue(ctx, sdk.ValueDescriptor[int64]{Name: "timer"})
	return err
}

// ProcessElement alerts on a large transaction after a small one, and
// flags a small one.
func (f *Fraud) ProcessElement(ctx *sdk.Context, in Txn, out *sdk.Collector[Alert]) error {
	small, flagged, err := f.small.Get()
	if err != nil {
		return err
	}
	if flagged && in.Amount > 500 {
		// The flag's timer may not have fired yet though the window has
		// passed: the watermark lags. The event times decide.
		end, _, err := f.timer.Get()
		if err != nil {
			return err
		}
		if ctx.Timestamp() <= end {
			if err := out.Emit(Alert{Account: in.Account, Small: small, Large: in.Amount}); err != nil {
				return err
			}
		}
	}
	if flagged {
		if err := f.clear(ctx); err != nil {
			return err
		}
	}
	if in.Amount < 1 {
		end := ctx.Timestamp() + f.window
		ctx.Timers().RegisterEventTimeTimer(end)
		if err := f.timer.Update(end); err != nil {
			return err
		}
		return f.small.Update(in.Amount)
	}
	return nil
}

// OnTimer clears the flag.
func (f *Fraud) OnTimer(ctx *sdk.Context, t sdk.Timer, out *sdk.Collector[Alert]) error {
	return f.clear(ctx) // the window passed without a large transaction
}

func (f *Fraud) clear(ctx *sdk.Context) error {
	if end, ok, _ := f.timer.Get(); ok {
		ctx.Timers().DeleteEventTimeTimer(end)
	}
	if err := f.timer.Clear(); err != nil {
		return err
	}
	return f.small.Clear()
}

// NewFraud is example.fraud's factory.
func NewFraud(c FraudConfig) (sdk.ProcessFunction[Txn, Alert], error) {
	w := time.Minute
	if c.Window != "" {
		w, _ = time.ParseDuration(c.Window) // checked by Validate
	}
	return &Fraud{window: w.Milliseconds()}, nil
}

func init() { sdk.RegisterProcess("example.fraud", NewFraud) }
