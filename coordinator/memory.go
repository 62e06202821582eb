package coordinator

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/lifecycle"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

const (
	// lossNearLimit: a worker lost with its memory at this share of its
	// limit or more was most likely killed for memory (the kernel's OOM
	// killer gives no other sign than the connection breaking).
	lossNearLimit = 0.9
	// warnNearLimit: a job on a worker at this share of its limit or
	// more carries a warning.
	warnNearLimit = 0.8
)

// memoryShare is the worker's memory over its limit (0: unknown, no limit).
func memoryShare(m *controlpb.MemoryStats) float64 {
	if m.GetLimitBytes() <= 0 {
		return 0
	}
	return float64(m.GetTotalBytes()) / float64(m.GetLimitBytes())
}

// lossMemoryNote adds to a lost worker's reason when its last heartbeat
// was near its memory limit.
func lossMemoryNote(m *controlpb.MemoryStats) string {
	share := memoryShare(m)
	if share < lossNearLimit {
		return ""
	}
	return fmt.Sprintf("; its last heartbeat reported %s of its %s memory limit (%.0f%%, live heap %s): likely killed for running out of memory",
		api.FormatBytes(m.GetTotalBytes()), api.FormatBytes(m.GetLimitBytes()), share*100, api.FormatBytes(m.GetHeapLiveBytes()))
}

// jobWarningsLocked lists what a job's state does not show: sources and
// sinks that cannot reach their brokers, workers near their memory limit.
func (c *Coordinator) jobWarningsLocked(j *jobEntry) []string {
	var out []string
	onWorker := map[string][]*lifecycle.Task{}
	for _, t := range j.m.Tasks { // in vertex, then subtask order
		k := t.Key
		if t.State.Ended() || t.Worker == "" {
			continue
		}
		onWorker[t.Worker] = append(onWorker[t.Worker], t)
		for _, l := range t.Metrics.Links {
			if !l.Connected {
				out = append(out, fmt.Sprintf("%s (%s) cannot reach %s since %s: %s",
					l.Node, k, l.Target, l.Since.UTC().Format(time.RFC3339), l.LastError))
			}
		}
	}
	workers := make([]string, 0, len(onWorker))
	for id := range onWorker {
		workers = append(workers, id)
	}
	slices.Sort(workers)
	for _, id := range workers {
		w := c.workers[id]
		if w == nil {
			continue
		}
		share := memoryShare(w.memory)
		if share < warnNearLimit {
			continue
		}
		state := map[string]int64{}
		for _, t := range onWorker[id] {
			for _, s := range t.Metrics.StateSizes {
				state[s.Node] += s.Bytes
			}
		}
		var parts []string
		for _, n := range sortedKeys(state) {
			parts = append(parts, fmt.Sprintf("%s %s", n, api.FormatBytes(state[n])))
		}
		msg := fmt.Sprintf("worker %s holds %s of its %s memory limit (%.0f%%)",
			id, api.FormatBytes(w.memory.GetTotalBytes()), api.FormatBytes(w.memory.GetLimitBytes()), share*100)
		if len(parts) > 0 {
			msg += "; keyed state of this job there: " + strings.Join(parts, ", ")
		}
		msg += "; near the limit it may be killed for memory: raise its --memory-limit, add parallelism, or bound the state (shorter windows, fewer keys)"
		out = append(out, msg)
	}
	return out
}

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func linksOf(ls []*controlpb.Link) []lifecycle.Link {
	var out []lifecycle.Link
	for _, l := range ls {
		ll := lifecycle.Link{Node: l.GetNode(), Target: l.GetTarget(), Connected: l.GetConnected(), LastError: l.GetLastError()}
		if !ll.Connected && l.GetUnreachableSinceUnixMs() > 0 {
			ll.Since = time.UnixMilli(l.GetUnreachableSinceUnixMs())
		}
		out = append(out, ll)
	}
	return out
}

func stateSizesOf(ss []*controlpb.StateSize) []lifecycle.StateSize {
	var out []lifecycle.StateSize
	for _, s := range ss {
		out = append(out, lifecycle.StateSize{Node: s.GetNode(), Bytes: s.GetBytes()})
	}
	return out
}

func apiLinks(ls []lifecycle.Link) []api.Link {
	var out []api.Link
	for _, l := range ls {
		out = append(out, api.Link{Node: l.Node, Target: l.Target, Connected: l.Connected, UnreachableSince: timePtr(l.Since), LastError: l.LastError})
	}
	return out
}

func apiStateBytes(ss []lifecycle.StateSize) map[string]int64 {
	if len(ss) == 0 {
		return nil
	}
	out := make(map[string]int64, len(ss))
	for _, s := range ss {
		out[s.Node] += s.Bytes
	}
	return out
}
