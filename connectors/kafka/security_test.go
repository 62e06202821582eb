package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/tlsconf"
)

// secureBroker is a kfake broker that takes only TLS connections with a
// certificate from its CA's chain and SCRAM-SHA-256 logins: user "weir"
// (superuser) and user "reader", who may only describe topic "other".
type secureBroker struct {
	brokers []string
	caFile  string // the CA the broker's certificate is from
	otherCA string // a CA that did not sign it
}

func newSecureBroker(t *testing.T, topics ...string) secureBroker {
	t.Helper()
	dir := t.TempDir()
	ca, err := tlsconf.NewCA("kafka-ca")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteFiles(dir, "broker", []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsconf.NewCA("stranger")
	if err != nil {
		t.Fatal(err)
	}
	otherFiles, err := other.WriteFiles(t.TempDir(), "x", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, brokers := newCluster(t,
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-256", "weir", "s3cret"),
		kfake.Superuser("PLAIN", "plain", "pl4in"),
		kfake.Superuser("SCRAM-SHA-512", "weir512", "s3cret512"),
		kfake.User("SCRAM-SHA-256", "reader", "r3ader", kfake.ACL{
			Resource: kmsg.ACLResourceTypeTopic, Name: "other", Pattern: kmsg.ACLResourcePatternTypeLiteral,
			Operation: kmsg.ACLOperationDescribe, Allow: true,
		}),
		kfake.SeedTopics(eosPartitions, topics...),
	)
	return secureBroker{brokers: brokers, caFile: files.CA, otherCA: otherFiles.CA}
}

func (b secureBroker) tls() *spec.KafkaTLS { return &spec.KafkaTLS{CAFile: b.caFile} }

func scramLogin(user, pw string) *spec.KafkaSASL {
	return &spec.KafkaSASL{Mechanism: "SCRAM-SHA-256", Username: user, Password: pw}
}

// TestSecureExactlyOnceRoundTrip: an exactly-once sink writes over TLS and
// SCRAM, commits a checkpoint, dies after pre-committing the next one, and
// a restored sink commits it (the recommit path) over the same security;
// a read_committed source reading over TLS and SCRAM sees every record
// once. (A worker resolves secret references before a connector sees its
// spec: tests/secrets, tests/eos TestExactlyOnceSecureKafka.)
func TestSecureExactlyOnceRoundTrip(t *testing.T) {
	b := newSecureBroker(t, eosTopic)
	node := eosNode(b.brokers, func(k *spec.KafkaSink) {
		k.TLS, k.SASL = b.tls(), scramLogin("weir", "s3cret")
	})
	dctx := eosCtx("secjob", 0, 1)
	s1 := mustEOSSink(t, node, dctx)
	writeRange(t, s1, 0, 100)
	if _, err := s1.Snapshot(1); err != nil {
		t.Fatal(err)
	}
	if err := s1.NotifyCheckpointComplete(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	writeRange(t, s1, 100, 150)
	state2, err := s1.Snapshot(2)
	if err != nil {
		t.Fatal(err)
	}
	crash(s1)
	s2 := mustEOSSink(t, node, dctx, state2)
	if s2.eos.committed != 1 {
		t.Fatalf("restore committed %d transactions, want 1 (checkpoint 2's)", s2.eos.committed)
	}

	src := kafkaNode("in", b.brokers, eosTopic, func(k *spec.KafkaSource) {
		k.Bounded, k.Format = true, FormatRaw
		k.TLS, k.SASL = b.tls(), scramLogin("weir", "s3cret")
	})
	out := newTestOutput()
	_, done := startSource(t, testCtx(t, time.Minute), src, nil, out, nil)
	if err := wait(t, done, time.Minute); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out.snapshot() {
		got = append(got, fmt.Sprint(r.Fields.Get("value")))
	}
	slices.Sort(got)
	checkExactlyOnce(t, got, values(0, 150))
}

// runSource runs a bounded source to its end and returns Run's error.
func runSource(t *testing.T, node *spec.Node) error {
	t.Helper()
	_, done := startSource(t, testCtx(t, time.Minute), node, nil, newTestOutput(), func(s *Source) {
		s.connectBudget = time.Minute // a refusal must not wait for it
	})
	return wait(t, done, time.Minute)
}

func wantRefusal(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ErrAuth) || !errors.Is(err, dataflow.ErrUnrecoverable) {
		t.Fatalf("error is not ErrAuth/unrecoverable (a restart would burn the budget): %v", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not name %q: %v", p, err)
		}
	}
}

// TestSecureOtherMechanisms: PLAIN and SCRAM-SHA-512 logins over TLS read
// a (bounded, empty) topic to its end.
func TestSecureOtherMechanisms(t *testing.T) {
	b := newSecureBroker(t, "in")
	for _, l := range []*spec.KafkaSASL{
		{Mechanism: "PLAIN", Username: "plain", Password: "pl4in"},
		{Mechanism: "SCRAM-SHA-512", Username: "weir512", Password: "s3cret512"},
	} {
		err := runSource(t, kafkaNode("in", b.brokers, "in", func(k *spec.KafkaSource) {
			k.Bounded, k.TLS, k.SASL = true, b.tls(), l
		}))
		if err != nil {
			t.Errorf("%s: %v", l.Mechanism, err)
		}
	}
}

func TestSecureWrongPassword(t *testing.T) {
	b := newSecureBroker(t, "in")
	err := runSource(t, kafkaNode("in", b.brokers, "in", func(k *spec.KafkaSource) {
		k.Bounded, k.TLS, k.SASL = true, b.tls(), scramLogin("weir", "wrong")
	}))
	wantRefusal(t, err, `topic "in"`, `SCRAM-SHA-256 user "weir"`)
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestSecureACLDenied(t *testing.T) {
	b := newSecureBroker(t, "in", eosTopic)
	err := runSource(t, kafkaNode("in", b.brokers, "in", func(k *spec.KafkaSource) {
		k.Bounded, k.TLS, k.SASL = true, b.tls(), scramLogin("reader", "r3ader")
	}))
	wantRefusal(t, err, `topic "in"`, `user "reader"`)

	node := sinkNode(b.brokers, eosTopic, func(k *spec.KafkaSink) {
		k.TLS, k.SASL = b.tls(), scramLogin("reader", "r3ader")
	})
	s, err := NewSink(node, eosCtx("j", 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	s.connectBudget = 5 * time.Second
	err = s.Open(eosCtx("j", 0, 1))
	if err == nil {
		err = s.Process(&dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"x": 1})}, nil)
		if err == nil {
			err = s.Flush(context.Background())
		}
		s.Close(nil)
	}
	wantRefusal(t, err, `topic "`+eosTopic+`"`, `user "reader"`)
}

func TestSecureWrongCA(t *testing.T) {
	b := newSecureBroker(t, "in")
	err := runSource(t, kafkaNode("in", b.brokers, "in", func(k *spec.KafkaSource) {
		k.Bounded, k.TLS, k.SASL = true, &spec.KafkaTLS{CAFile: b.otherCA}, scramLogin("weir", "s3cret")
	}))
	wantRefusal(t, err, `topic "in"`, "certificate")
}

func TestSecurityConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  *spec.KafkaTLS
		sasl *spec.KafkaSASL
		want string
	}{
		{"missing CA", &spec.KafkaTLS{CAFile: "/nonexistent/ca.pem"}, nil, "tls: ca_file: open /nonexistent/ca.pem"},
		{"env outside prefix", nil, scramLogin("u", "${env:HOME}"), "${env:HOME}: a secret environment variable's name must start with WEIR_SECRET_"},
		{"env unset", nil, scramLogin("u", "${env:WEIR_SECRET_NOPE}"), "${env:WEIR_SECRET_NOPE}: not set on this process"},
		{"file without dir", nil, scramLogin("u", "${file:/etc/passwd}"), "this process has no secrets directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSecurity(tc.tls, tc.sasl)
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrConfig with %q", err, tc.want)
			}
		})
	}
}

// Outside a worker (the coordinator's check and lag endpoint, the CLI),
// NewSecurity resolves a password's reference from this process by the
// spec's rules; a connector of a task gets its spec resolved by the worker
// and refuses a reference that is still there instead of sending it to the
// brokers as the password.
func TestSecuritySecretReferences(t *testing.T) {
	t.Setenv("WEIR_SECRET_KAFKA_PW", "s3cret")
	sec, err := NewSecurity(nil, scramLogin("u", "${env:WEIR_SECRET_KAFKA_PW}"))
	if err != nil || sec.sasl.Password != "s3cret" {
		t.Fatalf("NewSecurity: %v", err)
	}
	_, err = NewSink(sinkNode([]string{"127.0.0.1:1"}, "out", func(k *spec.KafkaSink) {
		k.SASL = scramLogin("u", "${env:WEIR_SECRET_KAFKA_PW}")
	}), nil)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "sasl.password: holds a secret reference that was not resolved") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("a sink given an unresolved reference: %v", err)
	}
}

// The dead-letter producer of on_error: dead_letter takes tls and sasl like
// a sink: with them it reaches a broker that requires them and a failed
// record is acknowledged there; without them it cannot connect, and with a
// wrong password the refusal names the user.
func TestSecureDeadLetter(t *testing.T) {
	b := newSecureBroker(t, "dlq")
	policy := func(tlsOn bool, sasl *spec.KafkaSASL) *spec.ErrorPolicy {
		p := &spec.ErrorPolicy{Action: spec.OnErrorDeadLetter, Topic: "dlq", Brokers: b.brokers, SASL: sasl}
		if tlsOn {
			p.TLS = b.tls()
		}
		return p
	}
	h, closer, err := NewDeadLetter("n", policy(true, scramLogin("weir", "s3cret")), &dataflow.Counters{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(&dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"x": 1})}, nil, errors.New("bad record")); err != nil {
		t.Fatalf("dead letter over TLS and SCRAM: %v", err)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewDeadLetter("n", policy(false, nil), &dataflow.Counters{}); err == nil {
		t.Fatal("a plaintext dead-letter producer connected to a broker that requires TLS and SASL")
	}
	_, _, err = NewDeadLetter("n", policy(true, scramLogin("weir", "wrong")), &dataflow.Counters{})
	wantRefusal(t, err, `user "weir"`)
}
