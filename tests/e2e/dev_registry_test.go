package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-stream/weir/connectors/format"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/internal/proc"
)

// TestDevSchemaRegistry: `weir dev --schema-registry` starts a registry
// beside its broker and says where; a job submitted to it reads Avro
// written through that registry and writes Avro back through it.
func TestDevSchemaRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	bin := proc.Binary(t)
	dir := proc.ArtifactDir(t)
	dataDir := t.TempDir()
	httpAddr, kafkaAddr, regAddr := proc.FreeAddr(t), proc.FreeAddr(t), proc.FreeAddr(t)
	dev := proc.Start(t, dir, bin, "dev", nil, "dev", "--insecure", "--data-dir", dataDir, "--workers", "1",
		"--http-addr", httpAddr, "--grpc-addr", proc.FreeAddr(t), "--kafka-addr", kafkaAddr, "--etcd-addr", proc.FreeAddr(t),
		"--schema-registry", "--schema-registry-addr", regAddr)
	t.Cleanup(func() { copyLogs(t, filepath.Join(dataDir, "logs"), dir) })
	regURL := "http://" + regAddr
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		if dev.Exited() {
			t.Fatalf("weir dev exited during start-up:\n%s", readFile(dev.LogPath))
		}
		log := readFile(dev.LogPath)
		return strings.Contains(log, "web UI and REST API: http://"+httpAddr), log
	})
	if log := readFile(dev.LogPath); !strings.Contains(log, "schema registry:     "+regURL) {
		t.Fatalf("weir dev does not print the registry's URL:\n%s", log)
	}

	ctx := context.Background()
	reg, err := format.NewRegistry(format.RegistryConfig{URL: regURL})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := format.NewEncoder(ctx, reg, format.EncoderConfig{Format: format.Avro, Subject: "clicks-value",
		Schema: `{"type":"record","name":"Click","fields":[{"name":"user","type":"string"},{"name":"n","type":"long"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 100
	for i := range n {
		b, err := enc.Append(nil, dataflow.FieldsOf(map[string]any{"user": fmt.Sprintf("u%d", i%5), "n": int64(i)}))
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "clicks", Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	tok, _ := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	client := api.NewClient("http://"+httpAddr, api.WithToken(strings.TrimSpace(string(tok))))
	id, err := client.Submit(ctx, []byte(strings.NewReplacer("KAFKA", kafkaAddr, "REG", regURL).Replace(`name: clicks
pipeline:
  - name: src
    source:
      kafka: {brokers: ["KAFKA"], topic: clicks, format: avro, bounded: true, schema_registry: {url: "REG"}}
  - name: odd
    filter: n % 2 == 1
  - name: out
    sink:
      kafka:
        brokers: ["KAFKA"]
        topic: odd-clicks
        format: avro
        schema_registry:
          url: "REG"
          schema: '{"type":"record","name":"Odd","fields":[{"name":"n","type":"long"},{"name":"user","type":"string"}]}'
`)))
	if err != nil {
		t.Fatal(err)
	}
	proc.Eventually(t, 60*time.Second, func() (bool, string) {
		j, err := client.Job(ctx, id)
		if err != nil {
			return false, err.Error()
		}
		if j.State == "FAILED" {
			t.Fatalf("job failed: %s", j.FailureCause)
		}
		return j.State == "FINISHED", j.State
	})

	dec, err := format.NewDecoder(format.Avro, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumeTopics("odd-clicks"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []string
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(got) < n/2 && rctx.Err() == nil {
		rd.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			f, err := dec.Decode(ctx, r.Value)
			if err != nil {
				t.Fatalf("output: %v", err)
			}
			got = append(got, f.String())
		})
	}
	var want []string
	for i := 1; i < n; i += 2 {
		want = append(want, fmt.Sprintf("{n: %d, user: u%d}", i, i%5))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("odd-clicks holds %d records, want %d:\n%v", len(got), len(want), got)
	}

	if err := dev.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code, err := dev.Wait(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("weir dev after SIGINT: exit %d, %v", code, err)
	}
}
