package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-stream/weir/dataflow/spec"
)

func eosJob(t *testing.T, brokers []string, extra, sink string) *spec.Job {
	t.Helper()
	src := "name: eos\n" + extra + "pipeline:\n  - source: {datagen: {}}\n  - sink: {kafka: {brokers: [" + strings.Join(brokers, ",") + "], topic: o, delivery: exactly-once" + sink + "}}\n"
	j, err := spec.Parse([]byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return j
}

func TestTxnWindow(t *testing.T) {
	cases := []struct {
		extra string
		want  time.Duration
	}{
		// 10s + 10m + 30s × 1.1 + 30s
		{"checkpoint: {}\n", 10*time.Second + 10*time.Minute + 33*time.Second + 30*time.Second},
		{"checkpoint: {interval: 1s, timeout: 20s, min_pause: 1s, tolerable_failures: 2}\nrestart: {strategy: fixed, delay: 5s}\n", 3*(22*time.Second) + 5*time.Second + 30*time.Second},
		{"checkpoint: {interval: 1s, timeout: 20s}\nrestart: {strategy: none}\n", 21*time.Second + 30*time.Second},
		{"checkpoint: {interval: 1s, timeout: 20s}\nrestart: {strategy: exponential, max: 10s, jitter: 0}\n", 21*time.Second + 10*time.Second + 30*time.Second},
	}
	for _, c := range cases {
		j := eosJob(t, []string{"b:1"}, c.extra, "")
		if got, why := TxnWindow(j); got != c.want {
			t.Errorf("%q: window %s (%s), want %s", c.extra, got, why, c.want)
		}
	}
}

func TestCheckJob(t *testing.T) {
	_, brokers := newCluster(t)
	_, strict := newCluster(t, kfake.BrokerConfigs(map[string]string{"transaction.max.timeout.ms": "60000"}))
	cases := []struct {
		name           string
		brokers        []string
		extra, sink    string
		want, wantPath string
	}{
		{name: "defaults fit", brokers: brokers, extra: "checkpoint: {}\n"},
		{name: "short timeout", brokers: brokers, extra: "checkpoint: {}\n", sink: ", transaction_timeout: 5m",
			wantPath: "pipeline[1].sink.kafka.transaction_timeout", want: "5m0s is too short: a transaction can stay open for up to 11m13s"},
		{name: "names what to change", brokers: brokers, extra: "checkpoint: {}\n", sink: ", transaction_timeout: 5m",
			wantPath: "pipeline[1].sink.kafka.transaction_timeout", want: "raise transaction_timeout above 11m13s, or lower checkpoint.timeout"},
		{name: "above broker max", brokers: brokers, extra: "checkpoint: {}\n", sink: ", transaction_timeout: 20m",
			wantPath: "pipeline[1].sink.kafka.transaction_timeout", want: "20m0s exceeds the broker's transaction.max.timeout.ms (15m0s on broker"},
		{name: "configured broker max", brokers: strict, extra: "checkpoint: {interval: 1s, timeout: 10s}\nrestart: {strategy: fixed, delay: 1s}\n", sink: ", transaction_timeout: 2m",
			wantPath: "pipeline[1].sink.kafka.transaction_timeout", want: "2m0s exceeds the broker's transaction.max.timeout.ms (1m0s"},
		{name: "fits a strict broker", brokers: strict, extra: "checkpoint: {interval: 1s, timeout: 10s}\nrestart: {strategy: fixed, delay: 1s}\n", sink: ", transaction_timeout: 59s"},
		{name: "unreachable", brokers: []string{"127.0.0.1:1"}, extra: "checkpoint: {}\n",
			wantPath: "pipeline[1].sink.kafka.brokers", want: "cannot check the brokers' transaction.max.timeout.ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := eosJob(t, c.brokers, c.extra, c.sink)
			err := CheckJob(testCtx(t, 20*time.Second), j)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			es, ok := spec.AsErrors(err)
			if !ok || len(es) != 1 || es[0].Path != c.wantPath || !strings.Contains(es[0].Msg, c.want) {
				t.Fatalf("CheckJob: %v\nwant one error at %s containing %q", err, c.wantPath, c.want)
			}
		})
	}
}

// TestCheckJobIgnoresAtLeastOnce: only exactly-once sinks are checked (no
// broker is contacted for the others).
func TestCheckJobIgnoresAtLeastOnce(t *testing.T) {
	j, err := spec.Parse([]byte("name: alo\npipeline:\n  - source: {datagen: {}}\n  - sink: {kafka: {brokers: ['127.0.0.1:1'], topic: o}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckJob(testCtx(t, 5*time.Second), j); err != nil {
		t.Fatal(err)
	}
}
