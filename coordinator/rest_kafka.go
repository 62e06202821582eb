package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-stream/weir/checkpoint"
	"github.com/weir-stream/weir/connectors/kafka"
	"github.com/weir-stream/weir/coordinator/api"
	"github.com/weir-stream/weir/dataflow/spec"
)

// Kafka source lag is computed here, in the coordinator: workers do not
// report their consumer positions or the brokers' end offsets. The
// position of each partition is the next offset recorded in the job's
// latest completed checkpoint (read from its _metadata); the end is asked
// from the partition's leader with a ListOffsets request at the source's
// isolation level. The lag is therefore "records the job would have to
// read again after a failure now", an upper bound of the live lag that is
// at most one checkpoint interval stale.

// lagTimeout bounds one lag computation (all brokers of a job).
const lagTimeout = 3 * time.Second

// kafkaSourceRef is one Kafka source node of a job, copied out under the
// coordinator's lock.
type kafkaSourceRef struct {
	vertex, node, topic string
	brokers             []string
	isolation           string
	parallelism         int
	// tls and sasl are the source's own settings: the lag endpoint logs
	// in as the job does.
	tls  *spec.KafkaTLS
	sasl *spec.KafkaSASL
}

// lagInput is what a lag computation needs, copied under the lock.
type lagInput struct {
	job     string
	sources []kafkaSourceRef
	st      checkpoint.Storage
	// latest completed checkpoint (id 0: none)
	cpID  int64
	cpDir string
	cpEnd time.Time
}

func (c *Coordinator) lagInputLocked(j *jobEntry) lagInput {
	in := lagInput{job: j.m.ID, st: j.st}
	for _, v := range j.graph.Vertices {
		if len(v.Nodes) == 0 || v.Nodes[0].Source == nil || v.Nodes[0].Source.Kafka == nil {
			continue
		}
		k := v.Nodes[0].Source.Kafka
		iso := k.Isolation
		if iso == "" {
			iso = "read_committed"
		}
		in.sources = append(in.sources, kafkaSourceRef{vertex: v.ID, node: v.Nodes[0].Name, topic: k.Topic,
			brokers: slices.Clone(k.Brokers), isolation: iso, parallelism: v.Parallelism, tls: k.TLS, sasl: k.SASL})
	}
	if l := j.cp.Latest(); l != nil {
		in.cpID, in.cpEnd = l.ID, l.End
		if l.Savepoint {
			in.cpDir = checkpoint.SavepointDir(j.m.ID, l.ID)
		} else {
			in.cpDir = checkpoint.CheckpointDir(j.m.ID, l.ID)
		}
	}
	return in
}

// handleKafkaLag serves GET /api/v1/jobs/{id}/kafka.
func (c *Coordinator) handleKafkaLag(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c.mu.Lock()
	j := c.jobs[id]
	var in lagInput
	if j != nil {
		in = c.lagInputLocked(j)
	}
	c.mu.Unlock()
	if j == nil {
		writeError(w, notFound(id))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), lagTimeout)
	defer cancel()
	writeJSON(w, http.StatusOK, c.computeLag(ctx, in))
}

// computeLag reads the checkpoint's offsets and asks the brokers for the
// end offsets. Failures are reported in the answer, never as an error: a
// broker that is down is what an operator looks at lag for.
func (c *Coordinator) computeLag(ctx context.Context, in lagInput) api.KafkaLag {
	out := api.KafkaLag{Basis: "none", FetchedAt: c.cfg.Clock.Now().UTC(), Sources: []api.KafkaSourceLag{}}
	// node -> topic -> partition -> next offset
	offsets := map[string]map[string]map[int32]int64{}
	var mdErr error
	if in.cpID > 0 && len(in.sources) > 0 {
		md, err := checkpoint.ReadMetadata(ctx, in.st, in.cpDir)
		if err != nil {
			mdErr = fmt.Errorf("reading checkpoint %d: %w", in.cpID, err)
		} else {
			out.Basis, out.CheckpointID = "checkpoint", in.cpID
			t := in.cpEnd.UTC()
			out.CheckpointAt = &t
			for _, s := range md.GetSubtasks() {
				for _, op := range s.GetOperators() {
					for _, o := range op.GetOffsets() {
						byTopic := offsets[op.GetNode()]
						if byTopic == nil {
							byTopic = map[string]map[int32]int64{}
							offsets[op.GetNode()] = byTopic
						}
						if byTopic[o.GetTopic()] == nil {
							byTopic[o.GetTopic()] = map[int32]int64{}
						}
						byTopic[o.GetTopic()][o.GetPartition()] = o.GetOffset()
					}
				}
			}
		}
	}
	for _, s := range in.sources {
		sl := api.KafkaSourceLag{Vertex: s.vertex, Node: s.node, Topic: s.topic, Brokers: s.brokers, Isolation: s.isolation,
			Parallelism: s.parallelism, Partitions: []api.PartitionLag{}}
		ends, err := endOffsets(ctx, s)
		var errs []string
		if mdErr != nil {
			errs = append(errs, mdErr.Error())
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
		sl.Error = strings.Join(errs, "; ")
		cp := offsets[s.node][s.topic]
		parts := map[int32]bool{}
		for p := range ends {
			parts[p] = true
		}
		for p := range cp {
			parts[p] = true
		}
		ps := make([]int32, 0, len(parts))
		for p := range parts {
			ps = append(ps, p)
		}
		sort.Slice(ps, func(a, b int) bool { return ps[a] < ps[b] })
		for _, p := range ps {
			pl := api.PartitionLag{Partition: p, Subtask: int(p) % max(s.parallelism, 1)}
			if o, ok := cp[p]; ok {
				pl.Offset = &o
			}
			if e, ok := ends[p]; ok {
				pl.EndOffset = &e
			}
			if pl.Offset != nil && pl.EndOffset != nil {
				lag := max(*pl.EndOffset-*pl.Offset, 0)
				pl.Lag = &lag
				sl.TotalLag += lag
			}
			sl.Partitions = append(sl.Partitions, pl)
		}
		out.TotalLag += sl.TotalLag
		out.Sources = append(out.Sources, sl)
	}
	return out
}

// endOffsets asks each partition's leader for its end offset at the
// source's isolation level.
func endOffsets(ctx context.Context, s kafkaSourceRef) (map[int32]int64, error) {
	if len(s.brokers) == 0 || s.topic == "" {
		return nil, fmt.Errorf("source %s has no brokers or topic", s.node)
	}
	cfg := sarama.NewConfig()
	cfg.ClientID = "weir-coordinator-lag"
	cfg.Version = sarama.V2_8_0_0
	budget := lagTimeout
	if dl, ok := ctx.Deadline(); ok {
		budget = max(time.Until(dl), 100*time.Millisecond)
	}
	cfg.Net.DialTimeout, cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = budget, budget, budget
	cfg.Metadata.Full = false
	cfg.Metadata.Retry.Max = 0
	cfg.Metadata.AllowAutoTopicCreation = false
	sec, err := kafka.NewSecurity(s.tls, s.sasl)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", s.node, err)
	}
	sec.Apply(cfg)
	// sarama takes no context: each network step is bounded by what is
	// left of the budget instead, and the client is closed before
	// returning, so nothing outlives the call.
	return fetchEnds(s, cfg)
}

func fetchEnds(s kafkaSourceRef, cfg *sarama.Config) (map[int32]int64, error) {
	list := strings.Join(s.brokers, ",")
	client, err := sarama.NewClient(s.brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("brokers %s: %w", list, err)
	}
	defer client.Close()
	parts, err := client.Partitions(s.topic)
	if err != nil {
		return nil, fmt.Errorf("topic %q on %s: %w", s.topic, list, err)
	}
	byLeader := map[*sarama.Broker][]int32{}
	for _, p := range parts {
		b, err := client.Leader(s.topic, p)
		if err != nil {
			return nil, fmt.Errorf("leader of %s/%d on %s: %w", s.topic, p, list, err)
		}
		byLeader[b] = append(byLeader[b], p)
	}
	ends := make(map[int32]int64, len(parts))
	for b, ps := range byLeader {
		req := sarama.NewOffsetRequest(cfg.Version)
		if s.isolation != "read_uncommitted" {
			req.IsolationLevel = sarama.ReadCommitted
		}
		for _, p := range ps {
			req.AddBlock(s.topic, p, sarama.OffsetNewest, 1)
		}
		resp, err := b.GetAvailableOffsets(req)
		if err != nil {
			return nil, fmt.Errorf("end offsets of %s from broker %s: %w", s.topic, b.Addr(), err)
		}
		for _, p := range ps {
			blk := resp.GetBlock(s.topic, p)
			if blk == nil {
				continue
			}
			if blk.Err != sarama.ErrNoError {
				return nil, fmt.Errorf("end offset of %s/%d: %w", s.topic, p, blk.Err)
			}
			ends[p] = blk.Offset
		}
	}
	return ends, nil
}
