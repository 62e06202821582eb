package cluster

import (
	"context"
	"strings"
	"testing"
	"time"
)

// KillWorkerRunning waits for completed checkpoints (at least minCompleted),
// then kills a worker that runs a subtask of vertex, and waits until the job
// has restarted and is RUNNING again. It returns the killed worker's index.
func (c *Cluster) KillWorkerRunning(t testing.TB, job, vertex string, minCompleted int) int {
	t.Helper()
	ctx := context.Background()
	Eventually(t, 60*time.Second, func() bool {
		cs, err := c.client.Checkpoints(ctx, job)
		return err == nil && cs.Counts.Completed >= minCompleted
	}, "job %s: %d checkpoints to complete", job, minCompleted)
	subs, err := c.client.Subtasks(ctx, job)
	if err != nil {
		t.Fatalf("cluster: subtasks of %s: %v", job, err)
	}
	victim := -1
	c.mu.Lock()
	for _, st := range subs.Subtasks {
		for i, w := range c.workers {
			if st.Vertex == vertex && !c.killed[i] && st.Worker == w.ID() {
				victim = i
			}
		}
	}
	c.mu.Unlock()
	if victim < 0 {
		t.Fatalf("cluster: no live worker runs vertex %q: %+v", vertex, subs.Subtasks)
	}
	c.KillWorker(victim)
	Eventually(t, 60*time.Second, func() bool {
		rs, err := c.client.Restarts(ctx, job)
		return err == nil && len(rs.Restarts) > 0 && c.Job(t, job).State == "RUNNING"
	}, "job %s running again after the loss of worker %d", job, victim)
	return victim
}

// StopWithSavepoint stops a job with a savepoint, waits for the job to
// finish, and returns the savepoint's location.
func (c *Cluster) StopWithSavepoint(t testing.TB, job string) string {
	t.Helper()
	ctx := context.Background()
	sp, err := c.client.TriggerSavepoint(ctx, job, true)
	if err != nil {
		t.Fatalf("cluster: savepoint of %s: %v", job, err)
	}
	var location string
	Eventually(t, 60*time.Second, func() bool {
		s, err := c.client.Savepoint(ctx, job, sp.RequestID)
		if err == nil && s.Status == "FAILED" {
			t.Fatalf("cluster: savepoint of %s failed: %s", job, s.Failure)
		}
		if err == nil && s.Status == "COMPLETED" {
			location = s.Location
			return true
		}
		return false
	}, "the savepoint of job %s", job)
	c.WaitState(t, job, "FINISHED", 30*time.Second)
	return location
}

// SubmitFromSavepoint submits a job spec ("${KAFKA_BROKERS}" replaced) that
// resumes from a savepoint, and waits until it is RUNNING.
func (c *Cluster) SubmitFromSavepoint(t testing.TB, specYAML, location string) string {
	t.Helper()
	specYAML = strings.ReplaceAll(specYAML, "${KAFKA_BROKERS}", c.KafkaAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := c.client.SubmitFromSavepoint(ctx, []byte(specYAML), location)
	if err != nil {
		t.Fatalf("cluster: submit from savepoint %s: %v", location, err)
	}
	c.WaitState(t, id, "RUNNING", 30*time.Second)
	return id
}
