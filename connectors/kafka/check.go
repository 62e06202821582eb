package kafka

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/weir-stream/weir/dataflow/spec"
)

// RedeployAllowance is what the restart budget adds to the restart
// strategy's longest delay: noticing the failure (a silent worker is lost
// after the coordinator's heartbeat timeout, 5s by default), cancelling and
// redeploying the job, and the sink's recovery.
const RedeployAllowance = 30 * time.Second

// brokerTxnMaxTimeout is the broker config that bounds transaction timeouts.
const brokerTxnMaxTimeout = "transaction.max.timeout.ms"

// defaultBrokerTxnMaxTimeout is Kafka's default transaction.max.timeout.ms,
// assumed when a broker does not report it.
const defaultBrokerTxnMaxTimeout = 15 * time.Minute

// RestartBudget is the longest a job with this restart strategy can be down
// after a failure before its sinks recover: the strategy's longest delay
// (exponential: max × (1 + jitter); fixed and failure_rate: delay; none:
// no restart) plus RedeployAllowance.
func RestartBudget(r *spec.Restart) (time.Duration, string) {
	if r == nil {
		r = &spec.Restart{}
		r.Strategy = spec.RestartExponential
		r.Max = spec.Duration(spec.DefaultRestartMax)
		j := spec.DefaultRestartJitter
		r.Jitter = &j
	}
	var delay time.Duration
	var why string
	switch r.Strategy {
	case spec.RestartExponential, "":
		jitter := spec.DefaultRestartJitter
		if r.Jitter != nil {
			jitter = *r.Jitter
		}
		m := r.Max.D()
		if m == 0 {
			m = spec.DefaultRestartMax
		}
		delay = time.Duration(float64(m) * (1 + jitter))
		why = fmt.Sprintf("restart.max %s × %g for jitter", m, 1+jitter)
	case spec.RestartFixed, spec.RestartFailureRate:
		delay = spec.DefaultRestartDelay
		if r.Delay != nil {
			delay = r.Delay.D()
		}
		why = fmt.Sprintf("restart.delay %s", delay)
	default:
		why = "no restart"
	}
	return delay + RedeployAllowance, fmt.Sprintf("%s + %s to notice the failure and redeploy", why, RedeployAllowance)
}

// TxnWindow is how long an exactly-once sink's transaction can stay open
// before it is committed, under the job's checkpoint and restart settings:
// a transaction begins after barrier n-1, is pre-committed at barrier n and
// committed when n completes; each tolerated checkpoint failure adds
// another round; a failure then delays the commit by the restart budget.
//
//	(tolerable_failures + 1) × (interval + min_pause + timeout) + restart budget
func TxnWindow(job *spec.Job) (time.Duration, string) {
	c := job.Checkpoint
	if c == nil {
		return 0, "no checkpoints"
	}
	interval, timeout := c.Interval.D(), c.Timeout.D()
	if interval == 0 {
		interval = spec.DefaultCheckpointInterval
	}
	if timeout == 0 {
		timeout = spec.DefaultCheckpointTimeout
	}
	rounds := time.Duration(c.TolerableFailures + 1)
	budget, why := RestartBudget(job.Restart)
	w := rounds*(interval+c.MinPause.D()+timeout) + budget
	return w, fmt.Sprintf("(checkpoint.tolerable_failures %d + 1) × (checkpoint.interval %s + checkpoint.min_pause %s + checkpoint.timeout %s) + restart budget %s (%s)",
		c.TolerableFailures, interval, c.MinPause.D(), timeout, budget, why)
}

// CheckJob checks every exactly-once Kafka sink of a job (parsed, with
// defaults) before it is accepted: its transaction_timeout must exceed
// TxnWindow, or a transaction could be aborted by the broker before the
// job commits it (lost output), and must not exceed the broker's
// transaction.max.timeout.ms, which it asks the sink's brokers for
// (DescribeConfigs). The error is a spec.Errors whose paths name the sink
// and whose messages say which value to change.
func CheckJob(ctx context.Context, job *spec.Job) error {
	if job == nil {
		return nil
	}
	var errs spec.Errors
	brokerMax := map[string]brokerLimit{}
	for i := range job.Pipeline {
		n := &job.Pipeline[i]
		if n.Sink == nil || n.Sink.Kafka == nil || n.Sink.Kafka.Delivery != DeliveryExactlyOnce {
			continue
		}
		k := n.Sink.Kafka
		path := fmt.Sprintf("pipeline[%d].sink.kafka.transaction_timeout", i)
		tt := k.TransactionTimeout.D()
		if tt == 0 {
			tt = spec.DefaultTransactionTimeout
		}
		if w, why := TxnWindow(job); w > 0 && tt <= w {
			errs = append(errs, &spec.FieldError{Path: path, Msg: fmt.Sprintf(
				"%s is too short: a transaction can stay open for up to %s = %s; raise transaction_timeout above %s, or lower checkpoint.timeout, checkpoint.interval or the restart delay",
				tt, w, why, w)})
		}
		sec, err := resolvedSecurity(k.TLS, k.SASL, "coordinator")
		if err != nil {
			// The coordinator runs this check, so it needs the
			// credentials too (docs/security.md#kafka).
			errs = append(errs, &spec.FieldError{Path: fmt.Sprintf("pipeline[%d].sink.kafka", i), Msg: fmt.Sprintf(
				"cannot check the brokers' %s for exactly-once delivery on the coordinator: %v", brokerTxnMaxTimeout, err)})
			continue
		}
		key := strings.Join(k.Brokers, ",")
		if k.SASL != nil {
			key += "|" + k.SASL.Mechanism + "|" + k.SASL.Username
		}
		lim, ok := brokerMax[key]
		if !ok {
			lim = describeTxnMaxTimeout(ctx, k.Brokers, sec)
			brokerMax[key] = lim
		}
		switch {
		case lim.err != nil:
			errs = append(errs, &spec.FieldError{Path: fmt.Sprintf("pipeline[%d].sink.kafka.brokers", i), Msg: fmt.Sprintf(
				"cannot check the brokers' %s for exactly-once delivery: %v", brokerTxnMaxTimeout, lim.err)})
		case tt > lim.max:
			errs = append(errs, &spec.FieldError{Path: path, Msg: fmt.Sprintf(
				"%s exceeds the broker's %s (%s on %s), which would refuse every transaction; lower transaction_timeout or raise %s on the brokers",
				tt, brokerTxnMaxTimeout, lim.max, lim.where, brokerTxnMaxTimeout)})
		}
	}
	return errs.Err()
}

type brokerLimit struct {
	max   time.Duration
	where string
	err   error
}

// describeTxnMaxTimeout asks every broker of the cluster for its
// transaction.max.timeout.ms (any of them may be a transaction
// coordinator) and returns the smallest.
func describeTxnMaxTimeout(ctx context.Context, brokers []string, sec *Security) brokerLimit {
	budget := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl))
	}
	c := baseConfig("check")
	sec.Apply(c)
	c.Metadata.Full = true
	client, _, err := connect(ctx, brokers, "", c, budget)
	if err != nil {
		return brokerLimit{err: err}
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return brokerLimit{err: err}
	}
	defer admin.Close()
	lim := brokerLimit{max: -1}
	for _, b := range client.Brokers() {
		entries, err := admin.DescribeConfig(sarama.ConfigResource{
			Type:        sarama.BrokerResource,
			Name:        strconv.Itoa(int(b.ID())),
			ConfigNames: []string{brokerTxnMaxTimeout},
		})
		if err != nil {
			return brokerLimit{err: fmt.Errorf("broker %d (%s): describe configs: %w", b.ID(), b.Addr(), err)}
		}
		v := defaultBrokerTxnMaxTimeout
		for _, e := range entries {
			if e.Name != brokerTxnMaxTimeout {
				continue
			}
			ms, err := strconv.ParseInt(e.Value, 10, 64)
			if err != nil || ms <= 0 {
				return brokerLimit{err: fmt.Errorf("broker %d (%s): %s is %q", b.ID(), b.Addr(), brokerTxnMaxTimeout, e.Value)}
			}
			v = time.Duration(ms) * time.Millisecond
		}
		if lim.max < 0 || v < lim.max {
			lim.max, lim.where = v, fmt.Sprintf("broker %d at %s", b.ID(), b.Addr())
		}
	}
	if lim.max < 0 {
		return brokerLimit{err: fmt.Errorf("brokers %s: no broker in the metadata", strings.Join(brokers, ","))}
	}
	return lim
}
