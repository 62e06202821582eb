package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// saramaLoop is the baseline: what a Go developer writes by hand for the
// ip-visits job with sarama alone. One goroutine per input partition decodes
// JSON, drops 404s and late events, counts per (ip, minute) with a
// per-partition watermark, and produces each window when it closes (the rest
// at the end) to the output topic. It reads to the high watermarks seen at
// start and returns events per second.
func saramaLoop(brokers, in, out string, n int64) (float64, error) {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.Fetch.Default = 1 << 20
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Flush.Bytes = 1 << 20
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	client, err := sarama.NewClient([]string{brokers}, cfg)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	parts, err := client.Partitions(in)
	if err != nil {
		return 0, err
	}
	ends := map[int32]int64{}
	var total int64
	for _, p := range parts {
		hw, err := client.GetOffset(in, p, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		ends[p] = hw
		total += hw
	}
	if total < n {
		return 0, fmt.Errorf("topic %s has %d records, want %d", in, total, n)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return 0, err
	}
	defer consumer.Close()
	producer, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		return 0, err
	}
	var produced sync.WaitGroup
	var perr error
	var emu sync.Mutex
	go func() {
		for range producer.Successes() {
			produced.Done()
		}
	}()
	go func() {
		for e := range producer.Errors() {
			emu.Lock()
			perr = e.Err
			emu.Unlock()
			produced.Done()
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		wg.Add(1)
		go func(p int32) {
			defer wg.Done()
			pc, err := consumer.ConsumePartition(in, p, sarama.OffsetOldest)
			if err != nil {
				errs <- err
				return
			}
			defer pc.Close()
			type key struct {
				ip    string
				start int64
			}
			type agg struct{ count, bytes int64 }
			type result struct {
				IP          string `json:"ip"`
				WindowStart int64  `json:"window_start"`
				WindowEnd   int64  `json:"window_end"`
				Count       int64  `json:"count"`
				Bytes       int64  `json:"bytes"`
			}
			const size, bound = 60_000, 5_000
			windows := map[key]*agg{}
			maxTs, fired := int64(-1<<62), int64(-1<<62)
			emit := func(upTo int64) {
				for k, a := range windows {
					if k.start+size-1 <= upTo {
						v, _ := json.Marshal(result{k.ip, k.start, k.start + size, a.count, a.bytes})
						produced.Add(1)
						producer.Input() <- &sarama.ProducerMessage{Topic: out, Key: sarama.StringEncoder(k.ip), Value: sarama.ByteEncoder(v)}
						delete(windows, k)
					}
				}
			}
			if ends[p] == 0 {
				return
			}
			for m := range pc.Messages() {
				var ev struct {
					IP     string `json:"ip"`
					Ts     int64  `json:"ts"`
					Status int    `json:"status"`
					Bytes  int64  `json:"bytes"`
				}
				if err := json.Unmarshal(m.Value, &ev); err != nil {
					errs <- err
					return
				}
				if ev.Ts > maxTs {
					maxTs = ev.Ts
				}
				wm := maxTs - bound - 1
				ws := ev.Ts - ev.Ts%size
				if ev.Status != 404 && ws+size-1 > wm {
					k := key{ev.IP, ws}
					a := windows[k]
					if a == nil {
						a = &agg{}
						windows[k] = a
					}
					a.count++
					a.bytes += ev.Bytes
				}
				if wm/size > fired/size {
					emit(wm)
					fired = wm
				}
				if m.Offset+1 >= ends[p] {
					break
				}
			}
			emit(1 << 62)
		}(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return 0, err
	}
	produced.Wait()
	el := time.Since(start)
	producer.AsyncClose()
	emu.Lock()
	defer emu.Unlock()
	if perr != nil {
		return 0, perr
	}
	return float64(n) / el.Seconds(), nil
}
