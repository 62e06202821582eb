package sdkexamples

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/weir-stream/weir/sdk"
)

// SequenceConfig configures example.sequence.
type SequenceConfig struct {
	// Splits is the number of sequences (default 4).
	Splits int `json:"splits"`
	// Count is how many numbers each sequence has (0: unbounded).
	Count int64 `json:"count"`
	// Every is the pause between two numbers of a sequence, a Go duration
	// (default none: as fast as the job takes them).
	Every string `json:"every"`
}

// Validate implements sdk.Validator.
func (c SequenceConfig) Validate() error {
	if c.Splits < 0 || c.Splits > 10000 {
		return sdk.ConfigError("splits", "want 1 to 10000, got %d", c.Splits)
	}
	if c.Count < 0 {
		return sdk.ConfigError("count", "must be >= 0 (0: unbounded), got %d", c.Count)
	}
	if c.Every != "" {
		if d, err := time.ParseDuration(c.Every); err != nil || d < 0 {
			return sdk.ConfigError("every", "want a duration such as 10ms, got %q", c.Every)
		}
	}
	return nil
}

// Number is a record of example.sequence: number N of sequence Seq, with
// event time TS (N seconds after the epoch).
type Number struct {
	Seq string `weir:"seq"`
	N   int64  `weir:"n"`
	TS  int64  `weir:"ts"`
}

// Sequence is example.sequence: a source of Splits numbered sequences,
// each a split whose position is the next number. Restored, every split
// continues right after the last number a completed checkpoint saw, so
// downstream exactly-once sinks see each number once.
type Sequence struct {
	cfg   SequenceConfig
	every time.Duration
}

// NewSequence is example.sequence's factory.
func NewSequence(cfg SequenceConfig) (sdk.Source[Number], error) {
	if cfg.Splits == 0 {
		cfg.Splits = 4
	}
	s := &Sequence{cfg: cfg}
	if cfg.Every != "" {
		s.every, _ = time.ParseDuration(cfg.Every) // checked by Validate
	}
	return s, nil
}

// Open implements sdk.Source.
func (s *Sequence) Open(*sdk.ConnectorContext) error { return nil }

// Splits implements sdk.Source: seq-0, seq-1, ...
func (s *Sequence) Splits(context.Context) ([]string, error) {
	ids := make([]string, s.cfg.Splits)
	for i := range ids {
		ids[i] = fmt.Sprintf("seq-%d", i)
	}
	return ids, nil
}

// Read implements sdk.Source: one number of each split in turn, until
// every split has Count numbers (bounded) or ctx ends.
func (s *Sequence) Read(ctx context.Context, splits []sdk.Split, out *sdk.SourceOutput[Number]) error {
	next := make([]int64, len(splits))
	for i, sp := range splits {
		if sp.Position != nil {
			n, err := strconv.ParseInt(string(sp.Position), 10, 64)
			if err != nil {
				return fmt.Errorf("split %s: position %q: %w", sp.ID, sp.Position, err)
			}
			next[i] = n
		}
	}
	if len(splits) == 0 && s.cfg.Count == 0 {
		<-ctx.Done() // unbounded, and no split here: wait for the end
		return nil
	}
	var tick <-chan time.Time
	if s.every > 0 {
		t := time.NewTicker(s.every)
		defer t.Stop()
		tick = t.C
	}
	for {
		done := true
		for i, sp := range splits {
			n := next[i]
			if s.cfg.Count > 0 && n >= s.cfg.Count {
				continue
			}
			done = false
			v := Number{Seq: sp.ID, N: n, TS: n * 1000}
			if err := out.Emit(sp.ID, strconv.AppendInt(nil, n+1, 10), v); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			next[i] = n + 1
		}
		if done {
			return nil // bounded: every split is read to its end
		}
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				return nil
			}
		} else if ctx.Err() != nil {
			return nil
		}
	}
}

func init() { sdk.RegisterSource("example.sequence", NewSequence) }
