package spec

import (
	"strings"
	"testing"
	"time"
)

const cpBase = `name: j
pipeline:
  - source: {datagen: {}}
  - sink: {discard: {}}
`

func TestCheckpointDefaults(t *testing.T) {
	j := mustParse(t, cpBase)
	if j.Checkpoint != nil {
		t.Fatalf("checkpointing enabled without the block: %+v", j.Checkpoint)
	}
	r := j.Restart
	if r.Strategy != RestartExponential || r.Initial.D() != time.Second || r.Max.D() != 30*time.Second ||
		r.Multiplier != 2 || *r.Jitter != 0.1 || r.ResetAfter.D() != time.Minute || r.Delay != nil || r.Attempts != 0 {
		t.Fatalf("restart defaults %+v", r)
	}
	j = mustParse(t, "checkpoint: {}\n"+cpBase)
	c := j.Checkpoint
	if c.Interval.D() != 10*time.Second || c.Mode != ModeExactlyOnce || c.Timeout.D() != 10*time.Minute ||
		c.MinPause != 0 || c.TolerableFailures != 0 || c.Retained != 3 || c.Storage != "" {
		t.Fatalf("checkpoint defaults %+v", c)
	}
	j = mustParse(t, "restart: {strategy: fixed}\n"+cpBase)
	if r := j.Restart; r.Attempts != 3 || r.Delay.D() != time.Second || r.Jitter != nil {
		t.Fatalf("fixed defaults %+v", r)
	}
	j = mustParse(t, "restart: {strategy: failure_rate, delay: 0s}\n"+cpBase)
	if r := j.Restart; r.MaxFailures != 3 || r.Interval.D() != 5*time.Minute || r.Delay.D() != 0 {
		t.Fatalf("failure_rate defaults %+v", r)
	}
	j = mustParse(t, "restart: {strategy: exponential, jitter: 0}\n"+cpBase)
	if *j.Restart.Jitter != 0 {
		t.Fatal("explicit jitter 0 replaced by the default")
	}
	j = mustParse(t, `checkpoint:
  interval: 1s
  mode: at_least_once
  timeout: 30s
  min_pause: 500ms
  tolerable_failures: 2
  retained: 5
  storage: file:///tmp/cp
restart: {strategy: none}
`+cpBase)
	if c := j.Checkpoint; c.Interval.D() != time.Second || c.Mode != ModeAtLeastOnce || c.Retained != 5 || c.TolerableFailures != 2 || c.MinPause.D() != 500*time.Millisecond {
		t.Fatalf("%+v", c)
	}
}

func TestCheckpointValidation(t *testing.T) {
	cases := []struct{ yaml, path, msg string }{
		{"checkpoint: {interval: 1ms}", "checkpoint.interval", "at least 10ms"},
		{"checkpoint: {mode: twice}", "checkpoint.mode", "exactly_once or at_least_once"},
		{"checkpoint: {timeout: -1s}", "checkpoint.timeout", "positive"},
		{"checkpoint: {min_pause: -1s}", "checkpoint.min_pause", "negative"},
		{"checkpoint: {tolerable_failures: -1}", "checkpoint.tolerable_failures", "negative"},
		{"checkpoint: {retained: -2}", "checkpoint.retained", "between 1 and 100"},
		{"checkpoint: {retained: 1000}", "checkpoint.retained", "between 1 and 100"},
		{"checkpoint: {storage: gs://x}", "checkpoint.storage", "file://, hdfs:// or s3://"},
		{"checkpoint: {intervall: 1s}", "checkpoint.intervall", "unknown field"},
		{"checkpoint: {interval: soon}", "checkpoint.interval", "duration"},
		{"restart: {strategy: sometimes}", "restart.strategy", "exponential, fixed, failure_rate or none"},
		{"restart: {strategy: fixed, attempts: -1}", "restart.attempts", "at least 1"},
		{"restart: {strategy: fixed, jitter: 0.2}", "restart.jitter", "only for strategy exponential"},
		{"restart: {strategy: none, delay: 1s}", "restart.delay", "only for strategy fixed or failure_rate"},
		{"restart: {attempts: 3}", "restart.attempts", "only for strategy fixed"},
		{"restart: {max_failures: 3}", "restart.max_failures", "only for strategy failure_rate"},
		{"restart: {initial: 2s, max: 1s}", "restart.max", "at least initial"},
		{"restart: {multiplier: 0.5}", "restart.multiplier", "at least 1"},
		{"restart: {jitter: 1.5}", "restart.jitter", "between 0 and 1"},
		{"restart: {initial: -1s}", "restart.initial", "positive"},
		{"restart: {strategy: failure_rate, interval: -1s}", "restart.interval", "positive"},
		{"restart: {strategy: failure_rate, max_failures: -1}", "restart.max_failures", "at least 1"},
		{"restart: {strategy: fixed, delay: -1s}", "restart.delay", "negative"},
		{"restart: fixed", "restart", "want a mapping"},
	}
	for _, c := range cases {
		t.Run(c.yaml, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml + "\n" + cpBase))
			es, ok := AsErrors(err)
			if !ok {
				t.Fatalf("err %v", err)
			}
			for _, e := range es {
				if e.Path == c.path && strings.Contains(e.Msg, c.msg) {
					return
				}
			}
			t.Fatalf("want %s: ...%s..., got %v", c.path, c.msg, err)
		})
	}
}
