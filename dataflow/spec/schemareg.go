package spec

import (
	"net/url"
	"strings"
)

// Kafka value formats that go through a schema registry (Confluent wire
// format; connectors/format, docs/formats.md).
const (
	FormatAvro       = "avro"
	FormatProtobuf   = "protobuf"
	FormatJSONSchema = "json_schema"
)

// registryFormats need a schema_registry block.
var registryFormats = []string{FormatAvro, FormatProtobuf, FormatJSONSchema}

// SchemaRegistry is how a Kafka source or sink reaches a
// Confluent-compatible schema registry, for the avro, protobuf and
// json_schema formats.
type SchemaRegistry struct {
	// URL is the registry's http:// or https:// address.
	URL string `yaml:"url,omitempty"`
	// Subject is the sink's subject (default: TopicNameStrategy,
	// "<topic>-value"). A source reads each value by the schema id in it
	// and names no subject.
	Subject string `yaml:"subject,omitempty"`
	// Schema is the sink's writer schema (Avro JSON, .proto text or a
	// JSON Schema), registered under the subject when the sink starts;
	// empty, the sink writes with the subject's latest version. Sink only.
	Schema string `yaml:"schema,omitempty"`
	// Message is the Protobuf message a sink writes, by full or short
	// name (default: the schema's first). Sink with protobuf only.
	Message string `yaml:"message,omitempty"`
	// Username and Password are HTTP basic auth; BearerToken a bearer
	// token. Like a SASL password, Password and BearerToken should be
	// secret references (${env:WEIR_SECRET_...} or ${file:/path}).
	Username    string `yaml:"username,omitempty"`
	Password    string `yaml:"password,omitempty"`
	BearerToken string `yaml:"bearer_token,omitempty"`
	// TLS is as a Kafka tls block: `tls: true` or CA and client
	// certificate files (kafkasec.go).
	TLS *KafkaTLS `yaml:"tls,omitempty"`
	// Timeout bounds how long a request is retried while the registry
	// does not answer (default 30s); then the task fails.
	Timeout Duration `yaml:"timeout,omitempty"`
}

// DefaultSubject is the subject of a topic's values under Confluent's
// default TopicNameStrategy.
func DefaultSubject(topic string) string { return topic + "-value" }

// IsRegistryFormat reports whether a Kafka format needs a schema
// registry.
func IsRegistryFormat(f string) bool {
	for _, r := range registryFormats {
		if f == r {
			return true
		}
	}
	return false
}

// schemaRegistry checks the schema_registry block of a Kafka source or
// sink at path p (".kafka" included) against its format.
func (v *validator) schemaRegistry(p, format string, r *SchemaRegistry, sink bool) {
	sp := p + ".schema_registry"
	if !IsRegistryFormat(format) {
		if r != nil {
			v.errorf(sp, "only with format %s (format %q needs no registry)", strings.Join(registryFormats, ", "), format)
		}
		return
	}
	if r == nil {
		v.errorf(sp, "required with format %s (url of a Confluent-compatible schema registry)", format)
		return
	}
	if r.URL == "" {
		v.errorf(sp+".url", "required")
	} else if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errorf(sp+".url", "%q: want http://host:port or https://host:port", r.URL)
	}
	if !sink {
		for name, val := range map[string]string{"subject": r.Subject, "schema": r.Schema, "message": r.Message} {
			if val != "" {
				v.errorf(sp+"."+name, "only on a sink: a source reads each value with the writer's schema, by the id in it")
			}
		}
	}
	if r.Message != "" && format != FormatProtobuf {
		v.errorf(sp+".message", "only with format protobuf")
	}
	if r.BearerToken != "" && (r.Username != "" || r.Password != "") {
		v.errorf(sp+".bearer_token", "give username/password or bearer_token, not both")
	}
	if (r.Username == "") != (r.Password == "") {
		v.errorf(sp+".password", "username and password go together")
	}
	if r.Timeout < 0 {
		v.errorf(sp+".timeout", "must be >= 0 (0: the default, 30s)")
	}
	if r.TLS != nil {
		v.kafkaSecurity(sp, r.TLS, nil)
		if strings.HasPrefix(r.URL, "http://") {
			v.errorf(sp+".tls", "set, but url %q is http://: use https://", r.URL)
		}
	}
}
