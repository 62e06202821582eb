package restart

import (
	"testing"
	"time"

	"github.com/weir-stream/weir/dataflow/spec"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type step struct {
	at      time.Duration // since t0
	running time.Duration // RunningSince offset from t0; -1: never ran
	restart bool
	delay   time.Duration
}

func run(t *testing.T, s Strategy, steps []step) {
	t.Helper()
	for i, st := range steps {
		f := Failure{Cause: "boom"}
		if st.running >= 0 {
			f.RunningSince = t0.Add(st.running)
		}
		ok, d := s.Decide(t0.Add(st.at), f)
		if ok != st.restart || d != st.delay {
			t.Fatalf("step %d: got (%v, %s), want (%v, %s)", i, ok, d, st.restart, st.delay)
		}
	}
}

func TestStrategies(t *testing.T) {
	ptr := func(d time.Duration) *spec.Duration { x := spec.Duration(d); return &x }
	zero := 0.0
	half := 0.5
	cases := []struct {
		name  string
		r     *spec.Restart
		rnd   func() float64
		steps []step
	}{
		{"exponential doubles up to max", &spec.Restart{Strategy: "exponential", Initial: spec.Duration(time.Second), Max: spec.Duration(5 * time.Second), Multiplier: 2, Jitter: &zero, ResetAfter: spec.Duration(time.Minute)}, nil,
			[]step{{0, -1, true, time.Second}, {2 * time.Second, -1, true, 2 * time.Second}, {5 * time.Second, 4 * time.Second, true, 4 * time.Second}, {10 * time.Second, -1, true, 5 * time.Second}, {20 * time.Second, -1, true, 5 * time.Second}}},
		{"exponential resets after a stable run", &spec.Restart{Strategy: "exponential", Initial: spec.Duration(time.Second), Max: spec.Duration(time.Minute), Multiplier: 3, Jitter: &zero, ResetAfter: spec.Duration(time.Minute)}, nil,
			[]step{{0, -1, true, time.Second}, {time.Second, 0, true, 3 * time.Second}, {2 * time.Minute, 60 * time.Second, true, time.Second}, {3 * time.Minute, 2*time.Minute + 30*time.Second, true, 3 * time.Second}}},
		{"exponential jitter from the injected rand", &spec.Restart{Strategy: "exponential", Initial: spec.Duration(10 * time.Second), Max: spec.Duration(time.Minute), Multiplier: 2, Jitter: &half, ResetAfter: spec.Duration(time.Minute)}, func() float64 { return 1 },
			[]step{{0, -1, true, 15 * time.Second}, {time.Second, -1, true, 30 * time.Second}}},
		{"exponential jitter low end", &spec.Restart{Strategy: "exponential", Initial: spec.Duration(10 * time.Second), Max: spec.Duration(time.Minute), Multiplier: 2, Jitter: &half, ResetAfter: spec.Duration(time.Minute)}, func() float64 { return 0 },
			[]step{{0, -1, true, 5 * time.Second}}},
		{"fixed gives up after attempts", &spec.Restart{Strategy: "fixed", Attempts: 2, Delay: ptr(3 * time.Second)}, nil,
			[]step{{0, -1, true, 3 * time.Second}, {time.Hour, 0, true, 3 * time.Second}, {2 * time.Hour, 0, false, 0}, {3 * time.Hour, 0, false, 0}}},
		{"failure rate within the interval", &spec.Restart{Strategy: "failure_rate", MaxFailures: 2, Interval: spec.Duration(time.Minute), Delay: ptr(time.Second)}, nil,
			[]step{{0, -1, true, time.Second}, {10 * time.Second, -1, true, time.Second}, {20 * time.Second, -1, false, 0}}},
		{"failure rate forgets old failures", &spec.Restart{Strategy: "failure_rate", MaxFailures: 2, Interval: spec.Duration(time.Minute), Delay: ptr(time.Second)}, nil,
			[]step{{0, -1, true, time.Second}, {30 * time.Second, -1, true, time.Second}, {61 * time.Second, -1, true, time.Second}, {70 * time.Second, -1, false, 0}}},
		{"none", &spec.Restart{Strategy: "none"}, nil, []step{{0, -1, false, 0}}},
		{"nil spec is exponential with defaults", nil, nil, []step{{0, -1, true, time.Second}, {0, -1, true, 2 * time.Second}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := New(c.r, c.rnd)
			if s.String() == "" {
				t.Fatal("no description")
			}
			run(t, s, c.steps)
		})
	}
}
