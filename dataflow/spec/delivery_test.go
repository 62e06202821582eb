package spec

import (
	"strings"
	"testing"
)

const eosBase = `
name: eos
checkpoint: {interval: 1s}
pipeline:
  - source: {datagen: {}}
  - sink: {kafka: {brokers: [b:1], topic: o, delivery: exactly-once}}
`

func TestKafkaSinkDelivery(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"exactly once", eosBase, ""},
		{"timeout set", strings.Replace(eosBase, "exactly-once}", "exactly-once, transaction_timeout: 5m}", 1), ""},
		{"timeout too small", strings.Replace(eosBase, "exactly-once}", "exactly-once, transaction_timeout: 10ms}", 1),
			"pipeline[1].sink.kafka.transaction_timeout: must be between 1s and"},
		{"timeout too large", strings.Replace(eosBase, "exactly-once}", "exactly-once, transaction_timeout: 1000h}", 1),
			"pipeline[1].sink.kafka.transaction_timeout: must be between 1s and"},
		{"timeout at least once", strings.Replace(eosBase, "delivery: exactly-once}", "transaction_timeout: 1m}", 1),
			"pipeline[1].sink.kafka.transaction_timeout: only for delivery exactly-once, not at-least-once"},
		{"no checkpoint", strings.Replace(eosBase, "checkpoint: {interval: 1s}\n", "", 1),
			"pipeline[1].sink.kafka.delivery: exactly-once commits a transaction when a checkpoint completes: add a checkpoint block"},
		{"at least once checkpoints", strings.Replace(eosBase, "interval: 1s", "interval: 1s, mode: at_least_once", 1),
			"pipeline[1].sink.kafka.delivery: exactly-once needs checkpoint.mode exactly_once (aligned barriers), got at_least_once"},
		{"unknown delivery", strings.Replace(eosBase, "exactly-once", "exactly_once", 1),
			"pipeline[1].sink.kafka.delivery: want at-least-once or exactly-once, got \"exactly_once\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src))
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestKafkaSinkDeliveryDefaults(t *testing.T) {
	j, err := Parse([]byte(eosBase))
	if err != nil {
		t.Fatal(err)
	}
	if k := j.Pipeline[1].Sink.Kafka; k.TransactionTimeout.D() != DefaultTransactionTimeout {
		t.Errorf("transaction_timeout default = %s, want %s", k.TransactionTimeout.D(), DefaultTransactionTimeout)
	}
	alo, err := Parse([]byte(strings.Replace(eosBase, ", delivery: exactly-once", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if k := alo.Pipeline[1].Sink.Kafka; k.Delivery != DeliveryAtLeastOnce || k.TransactionTimeout != 0 {
		t.Errorf("at-least-once sink: delivery %q, transaction_timeout %s; want at-least-once, 0", k.Delivery, k.TransactionTimeout.D())
	}
}
