package task

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/weir-stream/weir/checkpoint"
	checkpointpb "github.com/weir-stream/weir/proto/checkpoint/v1"
)

// OpenCheckpointStore opens checkpoint storage with checkpoint.OpenStorage.
func OpenCheckpointStore(uri string) (StateStore, error) {
	st, err := checkpoint.OpenStorage(uri)
	if err != nil {
		return nil, err
	}
	return storageStore{st}, nil
}

type storageStore struct{ st checkpoint.Storage }

func (s storageStore) WriteState(ctx context.Context, dir, name string, data []byte) (*checkpointpb.StateHandle, error) {
	return checkpoint.WriteState(ctx, s.st, dir, name, data)
}

func (s storageStore) ReadState(ctx context.Context, dir string, h *checkpointpb.StateHandle) ([]byte, error) {
	return checkpoint.ReadState(ctx, s.st, dir, h)
}

func (s storageStore) ReadMetadata(ctx context.Context, dir string) (*checkpointpb.Metadata, error) {
	return checkpoint.ReadMetadata(ctx, s.st, dir)
}

func (s storageStore) Close() error { return s.st.Close() }

// splitJobDir splits the job's checkpoint directory URI <root>/<job-id>
// into the storage root and the job's directory name.
func splitJobDir(uri string) (root, job string) {
	uri = strings.TrimRight(uri, "/")
	i := strings.LastIndex(uri, "/")
	if i < 0 || strings.HasSuffix(uri[:i], "://") {
		// No parent to open (a bare name, or file:///job): keep the
		// whole URI as the root and write directly under it.
		return uri, ""
	}
	return uri[:i], uri[i+1:]
}

// restore reads the checkpoint named by the deployment and restores every
// stateful node of the chain from it, before anything is opened. State is
// matched by node name (unique in a job), so a savepoint of another job
// with the same pipeline restores too, also when chaining changed. When the
// node's parallelism equals the checkpointed one, only this subtask's file
// is read; otherwise every subtask's file of the node (the operator keeps
// what it owns: key groups, partitions).
func (t *task) restore(ctx context.Context) error {
	rp := t.d.Restore
	uri := rp.MetadataURI
	if !strings.HasSuffix(uri, "/"+checkpoint.MetadataFile) {
		return fmt.Errorf("restore: metadata URI %q does not end in /%s", uri, checkpoint.MetadataFile)
	}
	dirURI := strings.TrimSuffix(uri, "/"+checkpoint.MetadataFile)
	st, err := t.openStore(dirURI)
	if err != nil {
		return fmt.Errorf("restore from checkpoint %d: %w", rp.CheckpointID, err)
	}
	defer st.Close()
	m, err := st.ReadMetadata(ctx, "")
	if err != nil {
		return fmt.Errorf("restore from checkpoint %d: %w", rp.CheckpointID, err)
	}
	if mp := int(m.GetMaxParallelism()); mp > 0 && mp != t.maxPar {
		return fmt.Errorf("restore from checkpoint %d: max_parallelism is %d, the checkpoint's is %d; it cannot change for a restored job",
			m.GetCheckpointId(), t.maxPar, mp)
	}
	for i, n := range t.nodes {
		s, ok := t.snapshotter(i)
		if !ok {
			continue
		}
		handles := stateHandles(m, n.name, t.v.Parallelism, t.d.ID.Subtask)
		if len(handles) == 0 {
			continue
		}
		states := make([][]byte, 0, len(handles))
		for _, h := range handles {
			data, err := st.ReadState(ctx, "", h)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// A missing file makes the checkpoint as unusable as a
				// corrupt one; the coordinator falls back on ErrCorrupt.
				// A storage outage is not the checkpoint's fault and keeps
				// its own error, so the next attempt retries the same one.
				if errors.Is(err, checkpoint.ErrNotFound) && !errors.Is(err, checkpoint.ErrCorrupt) {
					err = fmt.Errorf("%w: %w", checkpoint.ErrCorrupt, err)
				}
				return wrapNode(n.name, fmt.Errorf("restore from checkpoint %d: state file %s/%s: %w", m.GetCheckpointId(), dirURI, h.GetPath(), err))
			}
			states = append(states, data)
		}
		if err := safely(func() error { return s.Restore(states) }); err != nil {
			return wrapNode(n.name, fmt.Errorf("restore from checkpoint %d: %w", m.GetCheckpointId(), err))
		}
	}
	t.logger.Info("restored", "checkpoint", m.GetCheckpointId(), "savepoint", m.GetSavepoint(), "from_job", m.GetJobId())
	return nil
}

// stateHandles picks the state files of node for subtask sub of par.
func stateHandles(m *checkpointpb.Metadata, node string, par, sub int) []*checkpointpb.StateHandle {
	type entry struct {
		sub, par int
		h        *checkpointpb.StateHandle
	}
	var all []entry
	for _, s := range m.GetSubtasks() {
		for _, op := range s.GetOperators() {
			if op.GetNode() == node && op.GetHandle() != nil {
				all = append(all, entry{int(s.GetSubtask()), int(s.GetParallelism()), op.GetHandle()})
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	var out []*checkpointpb.StateHandle
	if all[0].par == par {
		for _, e := range all {
			if e.sub == sub {
				out = append(out, e.h)
			}
		}
		return out
	}
	for _, e := range all {
		out = append(out, e.h)
	}
	return out
}
