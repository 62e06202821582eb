package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/coordinator/scheduler"
	controlpb "github.com/weir-stream/weir/proto/control/v1"
)

// outboxSize bounds the messages queued for one worker. A worker that falls
// this far behind is treated as lost rather than blocking the driver.
const outboxSize = 4096

// MaxWorkerSlots bounds the slots one worker may offer. A slot runs a
// subtask of each vertex of a job, each with its goroutines, buffers and
// state: no worker runs thousands, and an unbounded count lets one
// registration (a mistake, or a process that is not a worker) claim every
// subtask of every job. Registrations above it are refused.
const MaxWorkerSlots = 1024

// maxWorkerField bounds a worker's id, addresses and version string.
const maxWorkerField = 256

// validateRegister checks a registration before it touches the registry:
// every problem, each naming its field.
func validateRegister(reg *controlpb.Register) error {
	var errs []string
	id := reg.GetWorkerId()
	switch {
	case id == "":
		errs = append(errs, "worker_id is required")
	case len(id) > maxWorkerField:
		errs = append(errs, fmt.Sprintf("worker_id is %d bytes, at most %d", len(id), maxWorkerField))
	case !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		errs = append(errs, fmt.Sprintf("worker_id %q has a space, control or invalid character", id))
	}
	if s := reg.GetSlots(); s < 1 || s > MaxWorkerSlots {
		errs = append(errs, fmt.Sprintf("slots is %d, must be 1 to %d", s, MaxWorkerSlots))
	}
	if err := checkHostPort(reg.GetDataAddr()); err != nil {
		errs = append(errs, "data_addr "+err.Error())
	}
	if a := reg.GetHttpAddr(); a != "" {
		if err := checkHostPort(a); err != nil {
			errs = append(errs, "http_addr "+err.Error())
		}
	}
	if v := reg.GetVersion(); len(v) > maxWorkerField || !utf8.ValidString(v) {
		errs = append(errs, fmt.Sprintf("version is not a version string of at most %d bytes", maxWorkerField))
	}
	if len(errs) > 0 {
		return fmt.Errorf("register (worker %.64q): %s", id, strings.Join(errs, "; "))
	}
	return nil
}

// checkHostPort accepts host:port with a non-empty host and a port from 1
// to 65535: an address other workers and the coordinator can dial.
func checkHostPort(addr string) error {
	if addr == "" {
		return errors.New("is required (host:port)")
	}
	if len(addr) > maxWorkerField {
		return fmt.Errorf("is %d bytes, at most %d", len(addr), maxWorkerField)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%.64q is not host:port", addr)
	}
	if host == "" || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		return fmt.Errorf("%.64q has no usable host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%.64q: port must be 1 to 65535", addr)
	}
	return nil
}

// workerEntry is one registered worker and its live session.
type workerEntry struct {
	id, dataAddr, httpAddr, version string
	slots                           int
	registeredAt, lastSeen          time.Time
	session                         uint64
	out                             chan *controlpb.CoordinatorMessage
	// kill ends the session (the stream's context).
	kill context.CancelFunc
	// memory is the last heartbeat's memory figure (nil before one).
	memory *controlpb.MemoryStats
	// operators are the user operators its binary carries (operators.go).
	operators []*controlpb.Operator
	goVersion string
	// deployAsBefore: it takes DeployTask.as_before (Register).
	deployAsBefore bool
}

// slotsUsedLocked counts the slots occupied on each worker, over all jobs:
// with slot sharing (scheduler.Place) a slot holds one slot group, the
// subtasks of one job with the same subtask index, so a worker's used slots
// are the groups with a placed task not yet ended there.
func (c *Coordinator) slotsUsedLocked() map[string]int {
	type group struct {
		job, worker string
		subtask     int
	}
	groups := map[group]bool{}
	used := map[string]int{}
	for id, j := range c.jobs {
		for _, t := range j.m.Tasks {
			if t.Worker == "" || t.State.Ended() {
				continue
			}
			g := group{id, t.Worker, t.Key.Subtask}
			if !groups[g] {
				groups[g] = true
				used[t.Worker]++
			}
		}
	}
	return used
}

func (c *Coordinator) freeSlotsLocked() []scheduler.Worker {
	used := c.slotsUsedLocked()
	ws := make([]scheduler.Worker, 0, len(c.workers))
	for _, w := range c.workers {
		if c.drainingLocked(w.id) {
			continue
		}
		ws = append(ws, scheduler.Worker{ID: w.id, Free: max(w.slots-used[w.id], 0), Operators: operatorVersions(w.operators)})
	}
	return ws
}

// workersLocked renders the registry, sorted by id.
func (c *Coordinator) workersLocked() []api.Worker {
	used := c.slotsUsedLocked()
	out := make([]api.Worker, 0, len(c.workers))
	for _, w := range c.workers {
		out = append(out, api.Worker{
			ID: w.id, DataAddr: w.dataAddr, HTTPAddr: w.httpAddr, Version: w.version,
			Slots: w.slots, SlotsUsed: used[w.id], State: "ALIVE",
			RegisteredAt: w.registeredAt, LastHeartbeat: c.lastSeen(w),
			HeapLiveBytes: w.memory.GetHeapLiveBytes(), MemoryBytes: w.memory.GetTotalBytes(), MemoryLimitBytes: w.memory.GetLimitBytes(),
			GoVersion: w.goVersion, Operators: renderOperators(w.operators),
		})
		c.drainInfoLocked(&out[len(out)-1])
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// sendLocked queues msg for a worker. A worker that is gone or whose queue
// is full is recorded as lost, to be handled after the current dispatch.
func (c *Coordinator) sendLocked(workerID string, msg *controlpb.CoordinatorMessage) {
	w := c.workers[workerID]
	if w == nil {
		c.lost = append(c.lost, lostWorker{workerID, "not connected"})
		return
	}
	select {
	case w.out <- msg:
	default:
		c.lost = append(c.lost, lostWorker{workerID, "control messages backed up"})
	}
}
