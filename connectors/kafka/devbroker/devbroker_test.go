package devbroker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/connectors/kafka"
)

func TestPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Start(Config{Addr: "127.0.0.1:0", DataDir: dir, Topics: []string{"events"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("events"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte('a' + i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	b.Close()
	b.Close() // idempotent

	// Same port, so clients configured with the old address keep working.
	b2, err := Start(Config{Addr: addr, DataDir: dir, Topics: []string{"events", "added-later"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	// Topics added to the config since the data directory was created
	// exist too (seed topics only apply to a fresh directory).
	if n, err := kafka.PartitionCount([]string{b2.Addr()}, "added-later"); err != nil || n != DefaultPartitions {
		t.Fatalf("added-later: %d partitions, %v", n, err)
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(b2.Addr()), kgo.ConsumeTopics("events", "added-later"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := 0
	for got < 10 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of 10 records after restart: %v", got, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s/%d: %v", topic, p, err) })
		got += fs.NumRecords()
	}
	if got != 10 {
		t.Fatalf("got %d records, want 10", got)
	}
}

func TestValidate(t *testing.T) {
	for _, addr := range []string{"nohostport", "0.0.0.0:9092", "127.0.0.1:99999"} {
		if _, err := Start(Config{Addr: addr}); err == nil {
			t.Errorf("addr %q: want an error", addr)
		}
	}
	c := Config{}
	if err := c.Validate(); err != nil || c.Partitions != 4 || c.Addr != "127.0.0.1:9092" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}
