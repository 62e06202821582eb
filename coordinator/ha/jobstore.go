package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/coordinator/jobstore"
)

// JobStore is the job store of coordinators sharing etcd: each record is a
// small etcd value written with the leader's fence; the spec, the only
// part that grows with the job, is a file in checkpoint storage
// (<root>/_jobs/<job-id>/spec.yaml), written before the record that
// refers to it.
type JobStore struct {
	l     *Leader
	specs checkpoint.Storage
}

// NewJobStore returns the job store of leader l, keeping specs in specs.
func NewJobStore(l *Leader, specs checkpoint.Storage) *JobStore {
	return &JobStore{l: l, specs: specs}
}

func (s *JobStore) key(id string) string { return s.l.c.cfg.Prefix + "/jobs/" + id }

func specPath(id string) string { return path.Join(jobstore.Dir, id, "spec.yaml") }

// Put writes the spec (once per job) and then the record, fenced.
func (s *JobStore) Put(ctx context.Context, r *jobstore.Record) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("job store: record of job %q: %w", r.ID, err)
	}
	if _, err := s.specs.Stat(ctx, specPath(r.ID)); errors.Is(err, checkpoint.ErrNotFound) {
		if err := jobstore.WriteFile(ctx, s.specs, specPath(r.ID), r.Spec); err != nil {
			return fmt.Errorf("job store: spec of job %s: %w", r.ID, err)
		}
	} else if err != nil {
		return fmt.Errorf("job store: spec of job %s: %w", r.ID, err)
	}
	small := *r
	small.Spec = nil
	val, err := json.Marshal(&small)
	if err != nil {
		return err
	}
	if _, err := s.l.Txn(ctx, nil, clientv3.OpPut(s.key(r.ID), string(val))); err != nil {
		return fmt.Errorf("job store: job %s: %w", r.ID, err)
	}
	return nil
}

// List reads every record and its spec.
func (s *JobStore) List(ctx context.Context) ([]*jobstore.Record, error) {
	resp, err := s.l.c.cli.Get(ctx, s.l.c.cfg.Prefix+"/jobs/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("job store: %w", err)
	}
	var (
		recs     []*jobstore.Record
		problems []string
	)
	for _, kv := range resp.Kvs {
		var r jobstore.Record
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			problems = append(problems, fmt.Sprintf("etcd key %s: not a job record: %v", kv.Key, err))
			continue
		}
		if want := strings.TrimPrefix(string(kv.Key), s.l.c.cfg.Prefix+"/jobs/"); r.ID != want {
			problems = append(problems, fmt.Sprintf("etcd key %s holds job %q", kv.Key, r.ID))
			continue
		}
		spec, err := jobstore.ReadFile(ctx, s.specs, specPath(r.ID))
		if err != nil {
			if errors.Is(err, checkpoint.ErrUnavailable) {
				return nil, fmt.Errorf("job store: %w", err)
			}
			problems = append(problems, fmt.Sprintf("job %s: spec: %v", r.ID, err))
			continue
		}
		r.Spec = spec
		if err := r.Validate(); err != nil {
			problems = append(problems, fmt.Sprintf("etcd key %s: %v", kv.Key, err))
			continue
		}
		recs = append(recs, &r)
	}
	slices.SortStableFunc(recs, func(a, b *jobstore.Record) int { return a.SubmittedAt.Compare(b.SubmittedAt) })
	if len(problems) > 0 {
		return recs, &jobstore.ListError{Problems: problems}
	}
	return recs, nil
}

// Delete forgets a job: its record, its checkpoint keys and its spec.
func (s *JobStore) Delete(ctx context.Context, id string) error {
	if _, err := s.l.Txn(ctx, nil, clientv3.OpDelete(s.key(id)),
		clientv3.OpDelete(s.l.c.cfg.Prefix+"/checkpoints/"+id+"/", clientv3.WithPrefix())); err != nil {
		return fmt.Errorf("job store: delete job %s: %w", id, err)
	}
	if err := s.specs.DeleteAll(ctx, specPath(id)); err != nil {
		return fmt.Errorf("job store: delete the spec of job %s: %w", id, err)
	}
	return nil
}
