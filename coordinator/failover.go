package coordinator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/lifecycle"
	"github.com/weir-stream/weir/dataflow/graph"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

// noRestoreError: the job has completed checkpoints but none of them can be
// restored. Starting without state would silently lose or repeat data, so
// the job fails instead.
type noRestoreError struct{ reasons []string }

func (e *noRestoreError) Error() string {
	return "no retained checkpoint can be restored: " + strings.Join(e.reasons, "; ")
}

// restoreChoice is the outcome of choosing a restore point for one
// SCHEDULING round of a job.
type restoreChoice struct {
	gen     int
	pending bool
	rp      *lifecycle.RestorePoint
	err     error
}

// restorePointLocked says what the next attempt restores from, and whether
// that is known yet: for the first attempt the savepoint given at submit
// (no I/O); after a failure the newest usable completed checkpoint, which
// takes storage reads, so the first call queues them on the job's I/O
// queue and reports not ready; the outcome comes back with a settle.
func (c *Coordinator) restorePointLocked(j *jobEntry) (*lifecycle.RestorePoint, error, bool) {
	if j.m.Attempt == 0 && !j.resumed {
		return j.initial, nil, true
	}
	if r := j.restore; r != nil && r.gen == j.restoreGen {
		if r.pending {
			return nil, nil, false
		}
		if r.err != nil {
			var unusable *noRestoreError
			if !errors.As(r.err, &unusable) {
				j.restore = nil // storage trouble: read again at the next try
			}
		}
		return r.rp, r.err, true
	}
	gen := j.restoreGen
	j.restore = &restoreChoice{gen: gen, pending: true}
	id, st, initial := j.m.ID, j.st, j.initial
	bad := maps.Clone(j.bad)
	c.goIO(j, func() {
		rp, err := c.chooseRestorePoint(id, st, initial, bad)
		c.locked(j, func() {
			maps.Copy(j.bad, bad)
			if j.restoreGen == gen {
				j.restore = &restoreChoice{gen: gen, rp: rp, err: err}
			}
			c.settleLocked()
		})
	})
	return nil, nil, false
}

// chooseRestorePoint picks the newest completed checkpoint that has a
// readable _metadata, whose state files all exist with their recorded
// sizes, and that no subtask failed to restore from (bad, by _metadata
// URI, which it adds to). Passed-over checkpoints are named in Fallback.
// It does storage I/O: call it without the lock.
func (c *Coordinator) chooseRestorePoint(job string, st checkpoint.Storage, initial *lifecycle.RestorePoint, bad map[string]string) (*lifecycle.RestorePoint, error) {
	ctx, cancel := c.storageCtx()
	defer cancel()
	ids, err := checkpoint.ListCompleted(ctx, st, job)
	if err != nil {
		return nil, err
	}
	var reasons []string
	for _, id := range slices.Backward(ids) {
		dir := checkpoint.CheckpointDir(job, id)
		uri := st.URI(path.Join(dir, checkpoint.MetadataFile))
		if why, isBad := bad[uri]; isBad {
			reasons = append(reasons, fmt.Sprintf("checkpoint %d: %s", id, why))
			continue
		}
		md, err := checkpoint.ReadMetadata(ctx, st, dir)
		if err == nil {
			err = checkpoint.ValidateForRestore(ctx, st, dir, md)
		}
		if err != nil {
			if errors.Is(err, checkpoint.ErrUnavailable) || ctx.Err() != nil {
				return nil, err // storage trouble, not a bad checkpoint
			}
			why := strings.ReplaceAll(err.Error(), "\n", "; ")
			bad[uri] = why
			reasons = append(reasons, fmt.Sprintf("checkpoint %d: %s", id, why))
			continue
		}
		return &lifecycle.RestorePoint{CheckpointID: id, URI: uri, Fallback: strings.Join(reasons, "; ")}, nil
	}
	if len(reasons) > 0 {
		if initial != nil && bad[initial.URI] == "" {
			rp := *initial
			rp.Fallback = strings.Join(reasons, "; ") + "; restoring the savepoint the job was submitted with"
			return &rp, nil
		}
		return nil, &noRestoreError{reasons}
	}
	return initial, nil // no checkpoint yet: start over as the job first did
}

// noteRestoreFailureLocked marks the checkpoint the current attempt
// restores from as bad when a subtask of it failed with corrupt state: the
// worker says so with FAILURE_KIND_CORRUPT_STATE (it wraps every restore
// failure of a file in checkpoint.ErrCorrupt); from an older worker the
// ErrCorrupt message in the text is the marker.
func (c *Coordinator) noteRestoreFailureLocked(j *jobEntry, k lifecycle.TaskKey, kind lifecycle.FailureKind, msg string) {
	r := j.m.Restore
	if r == nil || !lifecycle.IsCorruptState(kind, msg) {
		return
	}
	if _, seen := j.bad[r.URI]; !seen {
		j.bad[r.URI] = fmt.Sprintf("subtask %s failed to restore: %s", k, msg)
		c.log.Warn("checkpoint cannot be restored", "job", j.m.ID, "checkpoint", r.CheckpointID, "task", k, "err", msg)
	}
}

// jobStorage opens the storage a job's checkpoints go to. Opening may dial
// (HDFS, S3), so it runs without the lock; of two racing opens of one root
// the first kept wins and the other is closed.
func (c *Coordinator) jobStorage(specURI string) (checkpoint.Storage, error) {
	uri := specURI
	if uri == "" {
		uri = c.cfg.CheckpointStorage
	}
	c.mu.Lock()
	st := c.stores[uri]
	c.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := c.cfg.OpenStorage(uri)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage %s: %w", uri, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if kept := c.stores[uri]; kept != nil {
		_ = st.Close()
		return kept, nil
	}
	c.stores[uri] = st
	return st, nil
}

// resolveSavepoint checks a savepoint or retained checkpoint given at
// submit: uri is its directory or its _metadata file. It must read, its
// state files must exist, and its max parallelism must match the job's.
//
// State is matched to the new job's nodes by name. State of a node the job
// no longer has would be dropped without a word (a renamed window loses its
// counts), so it is refused, naming the nodes, unless allowNonRestored says
// the user means it, as Flink's --allowNonRestoredState does.
func (c *Coordinator) resolveSavepoint(ctx context.Context, uri string, g *graph.Graph, allowNonRestored bool) (*lifecycle.RestorePoint, error) {
	dir := strings.TrimSuffix(strings.TrimRight(uri, "/"), "/"+checkpoint.MetadataFile)
	st, err := c.cfg.OpenStorage(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	md, err := checkpoint.ReadMetadata(ctx, st, "")
	if err != nil {
		return nil, err
	}
	if err := checkpoint.ValidateForRestore(ctx, st, "", md); err != nil {
		return nil, err
	}
	if mp := int(md.GetMaxParallelism()); mp != 0 && g.MaxParallelism != 0 && mp != g.MaxParallelism {
		return nil, fmt.Errorf("it was taken with max_parallelism %d and the job has %d; max_parallelism cannot change across a restore", mp, g.MaxParallelism)
	}
	if missing := nonRestoredNodes(md, g); len(missing) > 0 && !allowNonRestored {
		return nil, fmt.Errorf("it has state for node(s) %s, which the job does not have (renamed or removed?); "+
			"name the nodes as before, or allow dropping their state (allow_non_restored_state=true, weir submit --allow-non-restored-state)",
			strings.Join(missing, ", "))
	}
	return &lifecycle.RestorePoint{CheckpointID: md.GetCheckpointId(), URI: st.URI(checkpoint.MetadataFile)}, nil
}

// nonRestoredNodes lists, sorted, the nodes with state in md that g does
// not have.
func nonRestoredNodes(md *checkpointpb.Metadata, g *graph.Graph) []string {
	have := map[string]bool{}
	for _, v := range g.Vertices {
		for _, n := range v.Nodes {
			have[n.Name] = true
		}
	}
	seen := map[string]bool{}
	var missing []string
	for _, s := range md.GetSubtasks() {
		for _, op := range s.GetOperators() {
			if n := op.GetNode(); op.GetHandle() != nil && !have[n] && !seen[n] {
				seen[n] = true
				missing = append(missing, n)
			}
		}
	}
	slices.Sort(missing)
	return missing
}
