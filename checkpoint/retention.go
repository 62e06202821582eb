package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// parseID returns n for a canonical "<prefix><n>" with n > 0.
func parseID(name, prefix string) (int64, bool) {
	s, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != s {
		return 0, false
	}
	return n, true
}

// scan lists the chk-<n> directories of a job and whether each has a
// _metadata, ascending by id. A job without a directory has none.
func scan(ctx context.Context, st Storage, jobID string) (completed, incomplete []int64, err error) {
	entries, err := st.List(ctx, jobID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list checkpoints: %w", err)
	}
	for _, e := range entries {
		id, ok := parseID(e.Name, "chk-")
		if !ok || !e.Dir {
			continue
		}
		fi, err := st.Stat(ctx, path.Join(CheckpointDir(jobID, id), MetadataFile))
		switch {
		case err == nil && !fi.Dir:
			completed = append(completed, id)
		case err == nil || errors.Is(err, ErrNotFound):
			incomplete = append(incomplete, id)
		default:
			return nil, nil, fmt.Errorf("list checkpoints: %w", err)
		}
	}
	slices.Sort(completed)
	slices.Sort(incomplete)
	return completed, incomplete, nil
}

// ListCompleted returns the ids of the job's completed checkpoints (chk-<n>
// directories with a _metadata), ascending. Directories without one are
// checkpoints in flight, aborted, or half deleted, and are left out.
func ListCompleted(ctx context.Context, st Storage, jobID string) ([]int64, error) {
	completed, _, err := scan(ctx, st, jobID)
	return completed, err
}

// Latest returns the id of the job's newest completed checkpoint; ok is
// false when there is none.
func Latest(ctx context.Context, st Storage, jobID string) (id int64, ok bool, err error) {
	completed, err := ListCompleted(ctx, st, jobID)
	if err != nil || len(completed) == 0 {
		return 0, false, err
	}
	return completed[len(completed)-1], true, nil
}

// Retain deletes all but the newest keep completed checkpoints of the job,
// and every incomplete chk-<n> directory older than the newest completed one
// (left by an abort or a crash; newer ones may be in flight). Savepoints are
// never touched. It returns the ids it deleted, ascending, also when it
// stops at an error. keep must be at least 1.
func Retain(ctx context.Context, st Storage, jobID string, keep int) (deleted []int64, err error) {
	if keep < 1 {
		return nil, fmt.Errorf("retain checkpoints of %s: keep %d, want at least 1", jobID, keep)
	}
	completed, incomplete, err := scan(ctx, st, jobID)
	if err != nil || len(completed) == 0 {
		return nil, err
	}
	newest := completed[len(completed)-1]
	var victims []int64
	for _, id := range incomplete {
		if id < newest {
			victims = append(victims, id)
		}
	}
	if len(completed) > keep {
		victims = append(victims, completed[:len(completed)-keep]...)
	}
	slices.Sort(victims)
	for _, id := range victims {
		if err := DeleteCheckpoint(ctx, st, jobID, id); err != nil {
			return deleted, err
		}
		deleted = append(deleted, id)
	}
	return deleted, nil
}

// DeleteCheckpoint deletes chk-<id> of the job. It removes _metadata first,
// so that a deletion cut short leaves an incomplete checkpoint (which the
// next Retain removes), never a completed one with missing files. Deleting
// a checkpoint that does not exist is not an error.
func DeleteCheckpoint(ctx context.Context, st Storage, jobID string, id int64) error {
	dir := CheckpointDir(jobID, id)
	if err := st.DeleteAll(ctx, path.Join(dir, MetadataFile)); err != nil {
		return fmt.Errorf("delete checkpoint %d: %w", id, err)
	}
	if err := st.DeleteAll(ctx, dir); err != nil {
		return fmt.Errorf("delete checkpoint %d: %w", id, err)
	}
	return nil
}
