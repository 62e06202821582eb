package eos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-stream/weir/internal/proc"
)

// secureKafka replaces the cluster's plaintext broker by a weir dev kafka
// process on the same address that takes only TLS connections with a
// client certificate from the cluster's CA and SCRAM logins of user
// "weir", and returns the flags loadgen and verify reach it with.
func (c *cluster) secureKafka(pwFile string) []string {
	c.T.Helper()
	c.Kafka.Kill()
	c.Kafka = proc.Start(c.T, c.Dir, c.Bin, "kafka-secure", nil,
		"dev", "kafka", "--addr", c.KafkaAddr, "--data-dir", filepath.Join(c.T.TempDir(), "kafka-secure"),
		"--tls-cert", c.TLS.Cert, "--tls-key", c.TLS.Key, "--tls-client-ca", c.TLS.CA,
		"--sasl-user", "weir", "--sasl-password-file", pwFile)
	return []string{"--kafka-tls-ca", c.TLS.CA, "--kafka-tls-cert", c.TLS.Cert, "--kafka-tls-key", c.TLS.Key,
		"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", "weir", "--kafka-sasl-password", "${env:WEIR_SECRET_KAFKA_PW}"}
}

// secureSpec adds tls and sasl blocks to every Kafka node of the
// ip-visits spec at path, the password a secret reference.
func (c *cluster) secureSpec(path string) string {
	c.T.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		c.T.Fatal(err)
	}
	block := fmt.Sprintf(`        tls: {ca_file: %q, cert_file: %q, key_file: %q}
        sasl: {mechanism: SCRAM-SHA-512, username: weir, password: "${env:WEIR_SECRET_KAFKA_PW}"}
`, c.TLS.CA, c.TLS.Cert, c.TLS.Key)
	s := string(b)
	for _, topic := range []string{"${INPUT_TOPIC:-access-log}", "${OUTPUT_TOPIC:-ip-visits}"} {
		old := "        topic: " + topic + "\n"
		if !strings.Contains(s, old) {
			c.T.Fatalf("the spec has no %q", old)
		}
		s = strings.Replace(s, old, old+block, 1)
	}
	out := filepath.Join(c.T.TempDir(), "ip-visits-secure.yaml")
	if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
		c.T.Fatal(err)
	}
	return out
}

// TestExactlyOnceSecureKafka is TestExactlyOnceSurvivesWorkerKills with
// TLS and SASL on every connection: the coordinator and the workers talk
// mutual TLS (as every proc cluster does), and the broker is a separate
// weir dev kafka process that takes only TLS with a client certificate
// and SCRAM-SHA-512 logins. The job's source and exactly-once sink name
// the password as a secret reference, which the coordinator (submit-time
// check, lag) and each worker resolve from their environment; loadgen and
// verify connect the same way. Workers running the sink are SIGKILLed
// twice; the read_committed output must be exact: 0 lost, 0 duplicated.
func TestExactlyOnceSecureKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	const pw = "eos-s3cret"
	pwFile := filepath.Join(t.TempDir(), "kafka-pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every process the test starts inherits it: the coordinator and the
	// workers resolve the spec's reference from it, loadgen and verify
	// their --kafka-sasl-password's.
	t.Setenv("WEIR_SECRET_KAFKA_PW", pw)
	events, seed, rate, kills := envInt(t, "WEIR_EOS_EVENTS", 200_000), 23, 30_000, 2
	c := startCluster(t, proc.Binary(t), 3, 4)
	kafkaFlags := c.secureKafka(pwFile)

	// The broker refuses a client without TLS and SASL.
	if out, code := c.Weir("loadgen", "access-log", "--brokers", c.KafkaAddr, "--topic", "access-log",
		"--events", "10", "--partitions", "4"); code == 0 {
		t.Fatalf("a plaintext loadgen reached the secured broker:\n%s", out)
	}

	id := c.Submit(c.secureSpec(c.ipVisitsEOS()), "-p", "4")
	spec, err := c.API.Spec(c.Ctx(), id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(spec), pw) || !strings.Contains(string(spec), "${env:WEIR_SECRET_KAFKA_PW}") {
		t.Fatalf("the stored spec must hold the reference, not the password:\n%s", spec)
	}
	c.WaitRunning(id, 1, 60*time.Second)
	lg := c.loadgen(events, seed, rate, kafkaFlags...)
	started := time.Now()
	span := time.Duration(events/rate) * time.Second
	next := 4
	for k := 1; k <= kills; k++ {
		j := c.Job(id)
		chk := c.WaitCheckpoint(id, j.Attempt, 0, 90*time.Second).ID
		at := started.Add(span * time.Duration(k) / time.Duration(kills+1))
		proc.Eventually(t, time.Until(at)+time.Second, func() (bool, string) { return !time.Now().Before(at), "kill time" })
		ws := c.sinkWorkers(id)
		if len(ws) == 0 {
			t.Fatal("no worker runs the sink")
		}
		t.Logf("kill %d at +%s: SIGKILL %s in attempt %d (checkpoint %d completed)", k, time.Since(started).Round(time.Millisecond), ws[0], j.Attempt, chk)
		c.Workers[ws[0]].Kill()
		c.StartWorker(fmt.Sprintf("worker-%d", next), 4, nil)
		next++
		c.WaitRunning(id, j.Attempt+1, 90*time.Second)
	}
	c.WaitCheckpoint(id, c.Job(id).Attempt, 0, 90*time.Second)
	if code := waitExit(t, lg, 3*time.Minute); code != 0 {
		t.Fatalf("loadgen: exit %d (log %s)", code, lg.LogPath)
	}
	r := c.verifyTopic("ip-visits", events, seed, 3*time.Minute, kafkaFlags...)
	t.Logf("verify (read_committed, TLS + SCRAM): %s", r)
	checkExactlyOnce(t, r)
	if j := c.Job(id); j.State != "RUNNING" || j.Restarts != kills {
		t.Fatalf("job after %d kills: %s, %d restarts, failure %q", kills, j.State, j.Restarts, j.FailureCause)
	}
	// The coordinator reaches the secured broker too (the lag endpoint).
	lag, err := c.API.KafkaLag(c.Ctx(), id)
	if err != nil || len(lag.Sources) != 1 || lag.Sources[0].Error != "" {
		t.Fatalf("kafka lag: %v %+v", err, lag)
	}
}
