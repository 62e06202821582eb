package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/weir-stream/weir/connectors/format"
	"github.com/weir-stream/weir/dataflow/spec"
)

// newRegistry makes the schema registry client of a source's or sink's
// schema_registry block: its password or bearer token resolved (secret
// references), its TLS files read. Errors name the field, never a value.
func newRegistry(f format.Format, r *spec.SchemaRegistry) (*format.Registry, error) {
	if r == nil {
		return nil, fmt.Errorf("schema_registry: required with format %s", f)
	}
	cfg := format.RegistryConfig{URL: r.URL, Username: r.Username, RetryBudget: r.Timeout.D()}
	// The worker resolved the spec's secret references when it deployed
	// the task (spec.ResolveSecrets); one still here never passed through
	// a worker and is refused rather than sent as the credential.
	for field, v := range map[string]string{"password": r.Password, "bearer_token": r.BearerToken} {
		if spec.HasSecretRefs([]byte(v)) {
			return nil, fmt.Errorf("schema_registry.%s: holds a secret reference that was not resolved (a worker resolves ${env:…} and ${file:…} when it deploys a task; this spec did not pass through one)", field)
		}
	}
	cfg.Password, cfg.BearerToken = r.Password, r.BearerToken
	var err error
	if r.TLS != nil {
		if cfg.TLS, err = loadTLS(r.TLS); err != nil {
			return nil, fmt.Errorf("schema_registry.tls: %v", err)
		}
	}
	reg, err := format.NewRegistry(cfg)
	if err != nil {
		return nil, err
	}
	return reg, nil
}

// setFramed makes the decoder read the Confluent wire format of f.
func (d *decoder) setFramed(f format.Format, r *spec.SchemaRegistry) error {
	reg, err := newRegistry(f, r)
	if err != nil {
		return err
	}
	d.framed, err = format.NewDecoder(f, reg, d.jsonFields)
	return err
}

// registryDown reports a decode failure that is the registry's, not the
// record's: it did not answer, or refused weir's credentials.
func registryDown(err error) bool {
	return !errors.Is(err, format.ErrMalformed) &&
		(errors.Is(err, format.ErrRegistryUnavailable) || errors.Is(err, format.ErrRegistryRefused))
}

// framedSink is a sink's side of a registry format: its writer schema
// is registered (or looked up) when the sink opens.
type framedSink struct {
	reg *format.Registry
	cfg format.EncoderConfig
	enc *format.Encoder
}

// setFramed checks a sink's registry settings and its inline schema; it
// does not connect.
func (s *Sink) setFramed(f format.Format, k spec.KafkaSink) error {
	reg, err := newRegistry(f, k.SchemaRegistry)
	if err != nil {
		return err
	}
	r := k.SchemaRegistry
	cfg := format.EncoderConfig{Format: f, Subject: r.Subject, Schema: r.Schema, Message: r.Message}
	if cfg.Subject == "" {
		cfg.Subject = spec.DefaultSubject(k.Topic)
	}
	if err := format.CheckSchema(f, cfg.Schema, cfg.Message); err != nil {
		return fmt.Errorf("schema_registry.schema: %w", err)
	}
	s.framed = &framedSink{reg: reg, cfg: cfg}
	return nil
}

// openEncoder registers the sink's writer schema (or takes its subject's
// latest) once; a refusal is unrecoverable (format.ErrRegistryRefused,
// format.ErrSchema), a registry that does not answer is retried for its
// timeout and then fails the task.
func (s *Sink) openEncoder() error {
	if s.framed == nil || s.framed.enc != nil {
		return nil
	}
	enc, err := format.NewEncoder(context.Background(), s.framed.reg, s.framed.cfg)
	if err != nil {
		return fmt.Errorf("kafka sink %q: topic %q: schema registry %s: %w", s.node, s.cfg.Topic, s.framed.reg.URL(), err)
	}
	s.framed.enc = enc
	s.logger.Info("kafka sink writes with a registered schema", "format", s.framed.cfg.Format, "subject", s.framed.cfg.Subject, "schema_id", enc.ID())
	return nil
}
