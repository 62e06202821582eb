// Package jobstore keeps what a coordinator must not forget when its
// process dies: every submitted job's spec, where its checkpoints live,
// what it was first restored from, and whether it should still run. A
// coordinator that starts again lists the store and resumes every job that
// should run from its latest completed checkpoint (docs/failover.md).
//
// Records are small: the spec (bounded by the coordinator's MaxSpecBytes)
// and a few fields. Checkpoint metadata, history and state stay in
// checkpoint storage; the store only says which jobs exist.
//
// The Storage implementation writes one file per record version into a
// checkpoint.Storage (the coordinator's default checkpoint root), so a
// single coordinator needs nothing but the storage its checkpoints already
// use:
//
//	<root>/_jobs/<job-id>/v<generation>.json
//
// A version is written under a temporary name and renamed (the commit
// point, as for checkpoint _metadata), then older versions are deleted. A
// crash between the rename and the deletion leaves two versions; List
// takes the newest. A record that fails to decode is reported with its
// file, not skipped silently.
package jobstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-stream/weir/checkpoint"
)

// Desired says what should happen to a job.
type Desired string

const (
	// Run: the job runs (or waits for slots, or restarts) until it ends.
	Run Desired = "run"
	// Cancel: a user cancelled it; a coordinator that starts again does
	// not resume it.
	Cancel Desired = "cancel"
	// Ended: it reached a terminal state, recorded in State.
	Ended Desired = "ended"
)

// Record is one job.
type Record struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Spec        []byte    `json:"spec"` // the submitted YAML, after env expansion and -p
	SubmittedAt time.Time `json:"submitted_at"`
	// StorageURI is the spec's checkpoint storage ("" for the
	// coordinator's default).
	StorageURI string `json:"storage_uri,omitempty"`
	// SavepointURI and SavepointID: what the first attempt restored from
	// (submit --from-savepoint), "" and 0 for none.
	SavepointURI string  `json:"savepoint_uri,omitempty"`
	SavepointID  int64   `json:"savepoint_id,omitempty"`
	Desired      Desired `json:"desired"`
	// Attempt is the last attempt deployed: a coordinator that takes the
	// job over continues after it, so workers (which refuse channels of
	// an attempt older than one they have seen) accept the new one.
	Attempt int64 `json:"attempt,omitempty"`
	// StartedAt is when the job first ran (zero: never), kept so an ended
	// job shows it after a coordinator restart.
	StartedAt time.Time `json:"started_at,omitzero"`
	// State, Cause and EndedAt: the terminal state once Desired is Ended.
	State   string    `json:"state,omitempty"`
	Cause   string    `json:"cause,omitempty"`
	EndedAt time.Time `json:"ended_at,omitzero"`
}

// Validate reports what is missing from a record.
func (r *Record) Validate() error {
	var errs []string
	if r.ID == "" || strings.ContainsAny(r.ID, "/\\.") {
		errs = append(errs, fmt.Sprintf("id %q is not a job id", r.ID))
	}
	if len(r.Spec) == 0 {
		errs = append(errs, "spec is empty")
	}
	switch r.Desired {
	case Run, Cancel:
	case Ended:
		if r.State == "" {
			errs = append(errs, "an ended job needs its state")
		}
	default:
		errs = append(errs, fmt.Sprintf("desired %q is not run, cancel or ended", r.Desired))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Store keeps job records.
type Store interface {
	// Put writes a record, replacing the job's previous one.
	Put(ctx context.Context, r *Record) error
	// List returns every record, oldest submission first. Records that
	// cannot be read are returned in the error (a *ListError) alongside
	// the ones that can.
	List(ctx context.Context) ([]*Record, error)
	// Delete forgets a job; deleting an unknown job is not an error.
	Delete(ctx context.Context, id string) error
}

// ListError names the records List could not read.
type ListError struct{ Problems []string }

func (e *ListError) Error() string {
	return "job store: " + strings.Join(e.Problems, "; ")
}

// Dir is the directory of the records inside the storage root.
const Dir = "_jobs"

// Storage is a Store in checkpoint storage.
type Storage struct {
	st checkpoint.Storage
	mu sync.Mutex
	// gen is the newest generation written or seen per job.
	gen map[string]int64
}

// NewStorage returns a store that keeps its records under <root>/_jobs.
func NewStorage(st checkpoint.Storage) *Storage {
	return &Storage{st: st, gen: map[string]int64{}}
}

// Put writes the next version of r and deletes the older ones.
func (s *Storage) Put(ctx context.Context, r *Record) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("job store: record of job %q: %w", r.ID, err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("job store: encode job %s: %w", r.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := path.Join(Dir, r.ID)
	gen, ok := s.gen[r.ID]
	if !ok {
		// First write of this process for the job: continue after what
		// storage holds, so a new version is always the newest.
		gens, err := s.generations(ctx, dir)
		if err != nil && !errors.Is(err, checkpoint.ErrNotFound) {
			return err
		}
		if len(gens) > 0 {
			gen = gens[len(gens)-1]
		}
	}
	gen++
	name := path.Join(dir, fmt.Sprintf("v%d.json", gen))
	tmp := name + ".tmp"
	if err := WriteFile(ctx, s.st, tmp, data); err != nil {
		return fmt.Errorf("job store: job %s: %w", r.ID, err)
	}
	if err := s.st.Rename(ctx, tmp, name); err != nil {
		return fmt.Errorf("job store: job %s: %w", r.ID, err)
	}
	s.gen[r.ID] = gen
	// Older versions are garbage now; failing to delete them costs space,
	// not correctness (List takes the newest).
	if gens, err := s.generations(ctx, dir); err == nil {
		for _, g := range gens {
			if g < gen {
				_ = s.st.DeleteAll(ctx, path.Join(dir, fmt.Sprintf("v%d.json", g)))
			}
		}
	}
	return nil
}

// List reads the newest version of every job.
func (s *Storage) List(ctx context.Context) ([]*Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	es, err := s.st.List(ctx, Dir)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("job store: %w", err)
	}
	var (
		recs     []*Record
		problems []string
	)
	for _, e := range es {
		if !e.Dir {
			continue
		}
		dir := path.Join(Dir, e.Name)
		gens, err := s.generations(ctx, dir)
		if err != nil {
			if errors.Is(err, checkpoint.ErrUnavailable) {
				return nil, fmt.Errorf("job store: %w", err)
			}
			problems = append(problems, err.Error())
			continue
		}
		if len(gens) == 0 {
			continue // only a temporary file: the submit never committed
		}
		gen := gens[len(gens)-1]
		name := path.Join(dir, fmt.Sprintf("v%d.json", gen))
		r, err := readRecord(ctx, s.st, name)
		if err != nil {
			if errors.Is(err, checkpoint.ErrUnavailable) {
				return nil, fmt.Errorf("job store: %w", err)
			}
			problems = append(problems, err.Error())
			continue
		}
		if r.ID != e.Name {
			problems = append(problems, fmt.Sprintf("%s: holds job %q, not %q", s.st.URI(name), r.ID, e.Name))
			continue
		}
		s.gen[r.ID] = max(s.gen[r.ID], gen)
		recs = append(recs, r)
	}
	slices.SortStableFunc(recs, func(a, b *Record) int { return a.SubmittedAt.Compare(b.SubmittedAt) })
	if len(problems) > 0 {
		return recs, &ListError{Problems: problems}
	}
	return recs, nil
}

// Delete removes every version of a job's record.
func (s *Storage) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.gen, id)
	if err := s.st.DeleteAll(ctx, path.Join(Dir, id)); err != nil && !errors.Is(err, checkpoint.ErrNotFound) {
		return fmt.Errorf("job store: delete job %s: %w", id, err)
	}
	return nil
}

// generations lists the committed versions in dir, ascending.
func (s *Storage) generations(ctx context.Context, dir string) ([]int64, error) {
	es, err := s.st.List(ctx, dir)
	if err != nil {
		return nil, err
	}
	var gens []int64
	for _, e := range es {
		rest, ok := strings.CutPrefix(e.Name, "v")
		if !ok {
			continue
		}
		num, ok := strings.CutSuffix(rest, ".json")
		if !ok {
			continue // v<n>.json.tmp: not committed
		}
		if g, err := strconv.ParseInt(num, 10, 64); err == nil && g > 0 {
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	return gens, nil
}

// maxRecordBytes bounds what readRecord accepts: a spec is at most a few
// MiB; anything larger is not a record.
const maxRecordBytes = 16 << 20

func readRecord(ctx context.Context, st checkpoint.Storage, name string) (*Record, error) {
	data, err := ReadFile(ctx, st, name)
	if err != nil {
		return nil, err
	}
	return DecodeRecord(st.URI(name), data)
}

// ReadFile reads a record or spec file whole, refusing more than 16 MiB.
func ReadFile(ctx context.Context, st checkpoint.Storage, name string) ([]byte, error) {
	rc, err := st.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxRecordBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", st.URI(name), err)
	}
	if len(data) > maxRecordBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", st.URI(name), maxRecordBytes)
	}
	return data, nil
}

// DecodeRecord parses one record; where names it in errors.
func DecodeRecord(where string, data []byte) (*Record, error) {
	if len(data) > maxRecordBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a job record", where, maxRecordBytes)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: not a job record: %w", where, err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return &r, nil
}

// WriteFile writes name whole, replacing what an earlier crash left there.
func WriteFile(ctx context.Context, st checkpoint.Storage, name string, data []byte) error {
	if err := st.DeleteAll(ctx, name); err != nil {
		return err
	}
	w, err := st.Create(ctx, name)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = st.DeleteAll(ctx, name)
	}
	return err
}
