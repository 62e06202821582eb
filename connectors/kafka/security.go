package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// ErrAuth: the brokers refused who the client is (SASL authentication
// failed, or a TLS handshake failed on a certificate) or what it asked for
// (an ACL denied the topic, the cluster or a transactional id). Restarting
// the job would fail the same way until the credentials, certificates or
// ACLs are changed, so it is unrecoverable: the job fails at once instead
// of spending its restart budget.
var ErrAuth = fmt.Errorf("kafka: refused by the brokers (%w)", dataflow.ErrUnrecoverable)

// Security is what a client presents to the brokers: TLS settings loaded
// from the spec's files and SASL credentials with any secret reference
// resolved. The zero value (and nil) is plaintext without SASL.
type Security struct {
	tls  *tls.Config
	sasl *spec.KafkaSASL
}

// NewSecurity loads a tls/sasl block read outside a worker (the
// coordinator's lag endpoint, the CLI's flags): it resolves a password
// written as ${env:NAME} or ${file:/path} from this process's environment
// and $WEIR_SECRETS_DIR, by the spec's rules (spec.Secrets), then loads
// the block as a worker's connector does. Errors name the file or
// reference, never a value.
func NewSecurity(t *spec.KafkaTLS, s *spec.KafkaSASL) (*Security, error) {
	sec, err := resolvedSecurity(t, s, "process")
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrConfig, err)
	}
	return sec, nil
}

// resolvedSecurity resolves the password's secret references from this
// process's secrets (where names the process in errors), then loads the
// block.
func resolvedSecurity(t *spec.KafkaTLS, s *spec.KafkaSASL, where string) (*Security, error) {
	if s != nil && spec.HasSecretRefs([]byte(s.Password)) {
		secrets := spec.OSSecrets()
		secrets.Where = where
		pw, err := secrets.ResolveValue(s.Password)
		if err != nil {
			return nil, fmt.Errorf("sasl.password: %v", err)
		}
		cp := *s
		cp.Password = pw
		s = &cp
	}
	return newSecurity(t, s)
}

// newSecurity loads a tls/sasl block of a task's source, sink or dead
// letter: the worker resolved its secret references with the rest of the
// spec when it deployed the task (spec.ResolveSecrets), so a reference
// still here did not pass through a worker and is refused rather than
// sent to the brokers as the password.
func newSecurity(t *spec.KafkaTLS, s *spec.KafkaSASL) (*Security, error) {
	sec := &Security{}
	if t != nil {
		c, err := loadTLS(t)
		if err != nil {
			return nil, fmt.Errorf("tls: %v", err)
		}
		sec.tls = c
	}
	if s != nil {
		if spec.HasSecretRefs([]byte(s.Password)) {
			return nil, errors.New("sasl.password: holds a secret reference that was not resolved (a worker resolves ${env:…} and ${file:…} when it deploys a task; this spec did not pass through one)")
		}
		cp := *s
		sec.sasl = &cp
	}
	return sec, nil
}

func loadTLS(t *spec.KafkaTLS) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			// tls's errors name neither file nor content beyond the PEM type.
			return nil, fmt.Errorf("cert_file %s, key_file %s: %v", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Apply sets the TLS and SASL settings on a sarama config. Every Kafka
// client weir makes (sources, sinks, the exactly-once sink's recovery,
// the submit-time checks, the lag endpoint and the CLI's tools) goes
// through it.
func (s *Security) Apply(c *sarama.Config) {
	if s == nil {
		return
	}
	if s.tls != nil {
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = s.tls.Clone()
	}
	if s.sasl != nil {
		c.Net.SASL.Enable = true
		c.Net.SASL.Handshake = true
		c.Net.SASL.Mechanism = sarama.SASLMechanism(s.sasl.Mechanism)
		c.Net.SASL.User = s.sasl.Username
		c.Net.SASL.Password = s.sasl.Password
		switch s.sasl.Mechanism {
		case sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512:
			auth := scram.Auth{User: s.sasl.Username, Pass: s.sasl.Password}
			mech := auth.AsSha256Mechanism()
			if s.sasl.Mechanism == sarama.SASLTypeSCRAMSHA512 {
				mech = auth.AsSha512Mechanism()
			}
			c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{mech: mech} }
		}
	}
}

// scramClient runs franz-go's SCRAM (RFC 5802) under sarama's SCRAMClient
// interface, so no second SCRAM implementation is needed.
type scramClient struct {
	mech    sasl.Mechanism
	session sasl.Session
	first   []byte
	done    bool
}

func (c *scramClient) Begin(_, _, _ string) error {
	s, first, err := c.mech.Authenticate(context.Background(), "")
	c.session, c.first, c.done = s, first, false
	return err
}

func (c *scramClient) Step(challenge string) (string, error) {
	if c.first != nil {
		first := c.first
		c.first = nil
		return string(first), nil
	}
	done, next, err := c.session.Challenge([]byte(challenge))
	if err != nil {
		return "", err
	}
	c.done = done
	return string(next), nil
}

func (c *scramClient) Done() bool { return c.done }

// principal says who a config authenticates as, for errors.
func principal(c *sarama.Config) string {
	var b strings.Builder
	if c.Net.SASL.Enable {
		fmt.Fprintf(&b, "SASL %s user %q", c.Net.SASL.Mechanism, c.Net.SASL.User)
	} else {
		b.WriteString("no SASL (anonymous)")
	}
	if c.Net.TLS.Enable {
		b.WriteString(" over TLS")
	}
	return b.String()
}

// isAuthError says whether err is a refusal that a retry cannot fix: bad
// credentials, a certificate the client or the broker does not trust, or
// an ACL denial.
func isAuthError(err error) bool {
	if err == nil {
		return false
	}
	for _, k := range []sarama.KError{
		sarama.ErrSASLAuthenticationFailed, sarama.ErrUnsupportedSASLMechanism, sarama.ErrIllegalSASLState,
		sarama.ErrTopicAuthorizationFailed, sarama.ErrClusterAuthorizationFailed,
		sarama.ErrTransactionalIDAuthorizationFailed, sarama.ErrGroupAuthorizationFailed,
	} {
		if errors.Is(err, k) {
			return true
		}
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}

// authError words a refusal with the topic, brokers and principal.
func authError(brokers []string, topic string, c *sarama.Config, err error) error {
	return fmt.Errorf("%w: brokers %s refused %s on topic %q: %v (check the credentials, the CA and the ACLs for this principal)",
		ErrAuth, strings.Join(brokers, ","), principal(c), topic, err)
}

// saslRefusal tells a refusal of the credentials apart from an outage when
// a broker ends the connection during SASL authentication instead of
// answering with an error code (as kfake does; Kafka answers
// SASL_AUTHENTICATION_FAILED, which isAuthError sees): a broker that takes
// the same connection without SASL but drops it with SASL refused the
// credentials. It returns that error, or nil.
func saslRefusal(brokers []string, c *sarama.Config) error {
	if !c.Net.SASL.Enable {
		return nil
	}
	open := func(addr string, cfg *sarama.Config) error {
		b := sarama.NewBroker(addr)
		if err := b.Open(cfg); err != nil {
			return err
		}
		defer b.Close()
		ok, err := b.Connected()
		if err == nil && !ok {
			err = errors.New("not connected")
		}
		return err
	}
	for _, addr := range brokers {
		transport := *c
		transport.Net.SASL.Enable = false
		if open(addr, &transport) != nil {
			continue // the transport fails too: not a SASL problem
		}
		if err := open(addr, c); err != nil {
			return fmt.Errorf("the broker %s ended the connection during SASL authentication (credentials refused): %w", addr, err)
		}
	}
	return nil
}
