package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	eosRuns       = flag.Int("eos-runs", 5, "runs of ip-visits with each sink delivery for eos_vs_alo_ratio")
	eosPassRuns   = flag.Int("eos-passthrough-runs", 3, "runs of the pass-through job (one output record per input record) with each sink delivery")
	latencyRate   = flag.Int("latency-rate", 1000, "records per second produced in the end-to-end latency benchmark")
	latencyWarmup = flag.Duration("latency-warmup", 5*time.Second, "produced records left out of the latency percentiles at the start")
	latencyWindow = flag.Duration("latency-window", 15*time.Second, "steady state over which the latency percentiles are taken")
)

// ensureAccessLog writes the 1M-event access-log topic the ip-visits jobs
// read, once per run of the driver.
func (e *env) ensureAccessLog() error {
	if e.accessLog {
		return nil
	}
	if _, err := e.weir("loadgen", "access-log", "--brokers", e.kafka, "--topic", "access-log",
		"--events", fmt.Sprint(*events), "--seed", "1", "--partitions", "4"); err != nil {
		return err
	}
	e.accessLog = true
	return nil
}

// eosCheckpointBlock is the checkpoint block of every job in this section:
// 1 s checkpoints, mode exactly_once (which delivery: exactly-once needs),
// whatever -checkpoint-mode says, so both sinks run under the same
// checkpoints, with the defaults otherwise (tolerable_failures 0: a failed
// checkpoint restarts the job, and the runs report it).
func (e *env) eosCheckpointBlock() string {
	return fmt.Sprintf("checkpoint: {interval: 1s, mode: exactly_once, storage: %q}\n", e.checkpointStorage())
}

// benchEOS prints eos_vs_alo_ratio (ip-visits throughput with the
// exactly-once sink over the same job with the at-least-once sink) and the
// end-to-end latencies of both sinks.
func (e *env) benchEOS() error {
	if err := e.benchEOSThroughput(); err != nil {
		return err
	}
	return e.benchEOSLatency()
}

// benchEOSThroughput runs ip-visits with 1 s checkpoints and the Kafka sink
// at delivery at-least-once and exactly-once in turn (the first of each
// pair alternates), -eos-runs times each, over the same access-log topic.
// Each figure is events / (submit → FINISHED) like ipvisits_events_per_s;
// the ratio is the median over the pairs of eos/alo within a pair.
// ip-visits writes one aggregate per (ip, minute), about one record per 8
// events, so the same pairs are run -eos-passthrough-runs times with a job
// that writes every event, to show the sink's own cost.
func (e *env) benchEOSThroughput() error {
	if err := e.ensureAccessLog(); err != nil {
		return err
	}
	ctx := context.Background()
	var alo, eos, ratios, passAlo, passEos, passRatios []float64
	for i := 0; i < max(*eosRuns, *eosPassRuns); i++ {
		order := []string{"at-least-once", "exactly-once"}
		if i%2 == 1 {
			order = []string{"exactly-once", "at-least-once"}
		}
		var jobs []string
		if i < *eosRuns {
			jobs = append(jobs, "ip-visits")
		}
		if i < *eosPassRuns {
			jobs = append(jobs, "pass-through")
		}
		for _, job := range jobs {
			got := map[string]float64{}
			var notes []string
			for _, d := range order {
				short := map[string]string{"at-least-once": "alo", "exactly-once": "eos"}[d]
				topic := fmt.Sprintf("%s-%s-%d", job, short, i)
				spec := ipVisitsSpec(e.kafka, topic, e.eosCheckpointBlock(), d)
				if job == "pass-through" {
					spec = passThroughBounded(e.kafka, topic, e.eosCheckpointBlock(), d)
				}
				r, err := e.runJob(spec, *events)
				if err != nil {
					return fmt.Errorf("ip-visits %s run %d: %w", d, i, err)
				}
				got[d] = r.eps
				cps, err := e.api.Checkpoints(ctx, r.id)
				if err != nil {
					return err
				}
				rs, err := e.api.Restarts(ctx, r.id)
				if err != nil {
					return err
				}
				outN, err := endOffsets(e.kafka, topic)
				if err != nil {
					return err
				}
				for _, h := range cps.History {
					if h.Status == "FAILED" {
						fmt.Printf("bench: eos run %d: %s %s: checkpoint %d failed: %s: %s\n", i, job, d, h.ID, h.FailureReason, h.Failure)
					}
				}
				for _, x := range rs.Restarts {
					fmt.Printf("bench: eos run %d: %s %s: restart after attempt %d: %s\n", i, job, d, x.FailedAttempt, x.Cause)
				}
				notes = append(notes, fmt.Sprintf("%s %.0f events/s (%.0f events/cpu_s; %d checkpoints completed, %d failed, %d restarts; output end offsets %d)",
					d, r.eps, r.perCPU, cps.Counts.Completed, cps.Counts.Failed, len(rs.Restarts), outN))
			}
			ratio := got["exactly-once"] / got["at-least-once"]
			if job == "ip-visits" {
				alo, eos = append(alo, got["at-least-once"]), append(eos, got["exactly-once"])
				ratios = append(ratios, ratio)
			} else {
				passAlo, passEos = append(passAlo, got["at-least-once"]), append(passEos, got["exactly-once"])
				passRatios = append(passRatios, ratio)
			}
			fmt.Printf("bench: eos run %d: %s: %s; ratio %.2f\n", i, job, strings.Join(notes, ", "), ratio)
		}
	}
	if len(ratios) > 0 {
		fmt.Printf("BENCH ipvisits_alo_sink_events_per_s %.0f events/s\n", median(alo))
		fmt.Printf("BENCH ipvisits_eos_sink_events_per_s %.0f events/s\n", median(eos))
		fmt.Printf("BENCH eos_vs_alo_ratio %.2f x\n", median(ratios))
	}
	if len(passRatios) > 0 {
		fmt.Printf("BENCH passthrough_alo_sink_events_per_s %.0f events/s\n", median(passAlo))
		fmt.Printf("BENCH passthrough_eos_sink_events_per_s %.0f events/s\n", median(passEos))
		fmt.Printf("BENCH eos_vs_alo_passthrough_ratio %.2f x\n", median(passRatios))
	}
	return nil
}

// benchEOSLatency measures produce → visible to a read_committed reader
// for a job that writes one output record per input record, with the
// at-least-once sink as the reference first, then the exactly-once sink.
func (e *env) benchEOSLatency() error {
	for _, d := range []string{"at-least-once", "exactly-once"} {
		lat, note, err := e.latencyRun(d)
		if err != nil {
			return fmt.Errorf("latency %s: %w", d, err)
		}
		fmt.Printf("bench: latency %s: %s\n", d, note)
		name := "e2e_latency"
		if d == "at-least-once" {
			name = "e2e_latency_alo"
		}
		fmt.Printf("BENCH %s_p50_ms %.0f ms\n", name, percentile(lat, 50))
		fmt.Printf("BENCH %s_p99_ms %.0f ms\n", name, percentile(lat, 99))
	}
	return nil
}

// passThroughBounded reads the bounded access-log topic like ip-visits and
// writes every event to the Kafka sink unchanged: the sink carries the
// whole input instead of ip-visits' per-minute aggregates.
func passThroughBounded(brokers, outTopic, ckpt, delivery string) string {
	return fmt.Sprintf(`name: pass-through-bench
parallelism: 2
%spipeline:
  - name: access-log
    source:
      kafka: {brokers: [%q], topic: access-log, format: json, bounded: true}
      schema: {ip: string, ts: int, url: string, status: int, bytes: int}
  - name: out
    sink:
      kafka: {brokers: [%q], topic: %s, key: ip, format: json, delivery: %s}
`, ckpt, brokers, brokers, outTopic, delivery)
}

// latencySpec passes every input record through a map to the Kafka sink:
// one output record per input record, nothing held back by a window.
func latencySpec(brokers, in, out, ckpt, delivery string) string {
	return fmt.Sprintf(`name: latency-bench
parallelism: 2
%spipeline:
  - name: in
    source:
      kafka: {brokers: [%q], topic: %s, format: json}
      schema: {id: int, pt: int}
  - name: stamp
    map: {out: "id + 1"}
  - name: out
    sink:
      kafka: {brokers: [%q], topic: %s, format: json, delivery: %s}
`, ckpt, brokers, in, brokers, out, delivery)
}

// latencyRun starts the pass-through job on a fresh input topic, waits
// until it runs and a checkpoint completed, then produces -latency-rate
// records/s (in batches every 10 ms) for -latency-warmup +
// -latency-window, each carrying its produce time (unix µs, taken just
// before the record is handed to the franz-go producer, which does not
// linger). A franz-go consumer with read_committed isolation stamps each
// output record when a fetch returns it; latency = arrival − produce time,
// over the records produced after the warm-up.
func (e *env) latencyRun(delivery string) ([]float64, string, error) {
	ctx := context.Background()
	short := map[string]string{"at-least-once": "alo", "exactly-once": "eos"}[delivery]
	in, outTopic := "latency-in-"+short, "latency-out-"+short

	prod, err := kgo.NewClient(kgo.SeedBrokers(e.kafka), kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
	if err != nil {
		return nil, "", err
	}
	defer prod.Close()
	// The first record creates the topic (4 partitions, the dev broker's
	// default); it falls in the warm-up.
	val := func(id int64) []byte {
		b, _ := json.Marshal(map[string]int64{"id": id, "pt": time.Now().UnixMicro()})
		return b
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: in, Value: val(0)}).FirstErr(); err != nil {
		return nil, "", err
	}

	var (
		mu      sync.Mutex
		arrived = map[int64][]float64{} // id → latencies in ms (more than one: duplicates)
	)
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(e.kafka),
		kgo.ConsumeTopics(outTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The broker answers a waiting fetch as soon as data becomes
		// readable (also when a transaction commits), so this bounds an
		// idle poll, not the latency.
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.AllowAutoTopicCreation(),
	)
	if err != nil {
		return nil, "", err
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			now := time.Now().UnixMicro()
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				var v struct{ ID, PT int64 }
				if json.Unmarshal(r.Value, &v) == nil {
					arrived[v.ID] = append(arrived[v.ID], float64(now-v.PT)/1000)
				}
			})
			mu.Unlock()
		}
	}()
	defer func() { cancel(); <-done; cons.Close() }()

	id, err := e.api.Submit(ctx, []byte(latencySpec(e.kafka, in, outTopic, e.eosCheckpointBlock(), delivery)))
	if err != nil {
		return nil, "", err
	}
	defer func() { _ = e.api.Cancel(ctx, id) }()
	if err := poll(time.Minute, func() (bool, error) {
		j, err := e.api.Job(ctx, id)
		if err != nil {
			return false, err
		}
		if j.State == "FAILED" || j.State == "CANCELLED" {
			return false, fmt.Errorf("job %s %s: %s", id, j.State, j.FailureCause)
		}
		if j.State != "RUNNING" {
			return false, nil
		}
		cps, err := e.api.Checkpoints(ctx, id)
		return err == nil && cps.Counts.Completed > 0, err
	}); err != nil {
		return nil, "", fmt.Errorf("job did not reach a completed checkpoint: %w", err)
	}

	// Produce at a steady rate: every 10 ms, the records due by then.
	var (
		produced         int64 = 1
		prodErr          error
		prodMu           sync.Mutex
		firstMeasuredID  int64 = -1
		lastMeasuredID   int64
		start            = time.Now()
		measureFrom      = start.Add(*latencyWarmup)
		end              = measureFrom.Add(*latencyWindow)
		tick             = time.NewTicker(10 * time.Millisecond)
		ratePerS         = float64(*latencyRate)
		inFlight         sync.WaitGroup
		producedMeasured int64
	)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		due := int64(now.Sub(start).Seconds()*ratePerS) + 1
		for ; produced < due; produced++ {
			if firstMeasuredID < 0 && !now.Before(measureFrom) {
				firstMeasuredID = produced
			}
			inFlight.Add(1)
			prod.Produce(ctx, &kgo.Record{Topic: in, Value: val(produced)}, func(_ *kgo.Record, err error) {
				defer inFlight.Done()
				if err != nil {
					prodMu.Lock()
					prodErr = err
					prodMu.Unlock()
				}
			})
		}
	}
	tick.Stop()
	lastMeasuredID = produced - 1
	inFlight.Wait()
	if prodErr != nil {
		return nil, "", fmt.Errorf("produce: %w", prodErr)
	}
	producedMeasured = lastMeasuredID - firstMeasuredID + 1
	// Wait until every measured record arrived (the last ones need the
	// next checkpoint with the exactly-once sink).
	missing := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		var n int64
		for i := firstMeasuredID; i <= lastMeasuredID; i++ {
			if len(arrived[i]) == 0 {
				n++
			}
		}
		return n
	}
	_ = poll(30*time.Second, func() (bool, error) { return missing() == 0, nil })

	mu.Lock()
	defer mu.Unlock()
	var lat []float64
	dups := 0
	for i := firstMeasuredID; i <= lastMeasuredID; i++ {
		if l := arrived[i]; len(l) > 0 {
			lat = append(lat, l[0])
			dups += len(l) - 1
		}
	}
	if len(lat) == 0 {
		return nil, "", fmt.Errorf("none of %d measured records arrived", producedMeasured)
	}
	cps, err := e.api.Checkpoints(ctx, id)
	if err != nil {
		return nil, "", err
	}
	// Checkpoint durations, and the spacing of the triggers: records
	// become visible one commit after the barrier that follows them.
	var ckptMs, gapMs []float64
	var triggers []time.Time
	for _, h := range cps.History {
		triggers = append(triggers, h.TriggerTime)
		if h.Status == "COMPLETED" {
			ckptMs = append(ckptMs, float64(h.DurationMs))
		}
	}
	sort.Slice(triggers, func(a, b int) bool { return triggers[a].Before(triggers[b]) })
	for k := 1; k < len(triggers); k++ {
		gapMs = append(gapMs, float64(triggers[k].Sub(triggers[k-1]).Milliseconds()))
	}
	ckptNote := ""
	if len(ckptMs) > 0 && len(gapMs) > 0 {
		ckptNote = fmt.Sprintf(" (duration median %.0f ms, max %.0f ms; trigger to trigger median %.0f ms, max %.0f ms)",
			median(ckptMs), percentile(ckptMs, 100), median(gapMs), percentile(gapMs, 100))
	}
	note := fmt.Sprintf("%d records at %d/s, %v warm-up left out, %d measured over %v, %d arrived, %d duplicates; "+
		"latency ms min %.0f p50 %.0f p90 %.0f p99 %.0f max %.0f; %d checkpoints completed%s, %d failed",
		produced, *latencyRate, *latencyWarmup, producedMeasured, *latencyWindow, len(lat), dups,
		percentile(lat, 0), percentile(lat, 50), percentile(lat, 90), percentile(lat, 99), percentile(lat, 100),
		cps.Counts.Completed, ckptNote, cps.Counts.Failed)
	if int64(len(lat)) < producedMeasured {
		return nil, "", fmt.Errorf("only %d of %d measured records arrived within 30 s: %s", len(lat), producedMeasured, note)
	}
	return lat, note, nil
}

// percentile is the nearest-rank p-th percentile of xs (p in 0..100).
func percentile(xs []float64, p float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if p <= 0 {
		return s[0]
	}
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// endOffsets is the sum of a topic's high watermarks: its record count,
// plus one transaction marker per partition and committed transaction for
// a transactional writer.
func endOffsets(brokers, topic string) (int64, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient([]string{brokers}, cfg)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range parts {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		total += hw
	}
	return total, nil
}
