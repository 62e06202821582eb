package spec

import (
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// KafkaTLS is how a Kafka client encrypts and, with a client certificate,
// authenticates to the brokers. `tls: true` is TLS with the system's roots;
// a mapping names PEM files, read by each worker when its task starts (so
// they must exist on every worker; they are not checked against
// --allowed-paths, which bounds writes, and no error quotes their content).
type KafkaTLS struct {
	// CAFile holds the CA certificates the brokers' certificates are
	// checked against ("": the system's roots).
	CAFile string `yaml:"ca_file,omitempty"`
	// CertFile and KeyFile are the client's certificate and key, for
	// brokers that require client certificates (both or neither).
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
	// ServerName overrides the host name checked in the brokers'
	// certificates (default: the host of each broker address).
	ServerName string `yaml:"server_name,omitempty"`
	// InsecureSkipVerify accepts any broker certificate: encryption
	// without authentication of the brokers, for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty"`
}

// MarshalYAML writes `tls: true` for system roots, so a spec round-trips.
func (t KafkaTLS) MarshalYAML() (any, error) {
	if t == (KafkaTLS{}) {
		return true, nil
	}
	type plain KafkaTLS
	return plain(t), nil
}

// decodeKafkaTLS decodes `tls: true` (system roots) and `tls: false` (no
// TLS); a mapping takes the ordinary path (it returns false).
func (d *decoder) decodeKafkaTLS(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return false
	}
	var b bool
	if n.Decode(&b) != nil {
		d.errorf(path, "want true, false or a mapping (ca_file, cert_file, key_file, server_name, insecure_skip_verify), got %s", kindName(n))
		return true
	}
	if b {
		v.Set(reflect.ValueOf(&KafkaTLS{}))
	}
	return true
}

var kafkaTLSPtrType = reflect.TypeFor[*KafkaTLS]()

// KafkaSASL is how a Kafka client authenticates with SASL.
type KafkaSASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism,omitempty"`
	Username  string `yaml:"username,omitempty"`
	// Password should be a secret reference, ${env:NAME} or ${file:/path},
	// resolved on the worker: a literal is stored with the spec in the job
	// store and shown by GET /api/v1/jobs/{id}/spec.
	Password string `yaml:"password,omitempty"`
}

// SASL mechanisms a Kafka client speaks.
var saslMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// kafkaSecurity checks the tls and sasl blocks of a Kafka source or sink
// at path p (".kafka" included).
func (v *validator) kafkaSecurity(p string, t *KafkaTLS, s *KafkaSASL) {
	if t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			v.errorf(p+".tls", "cert_file and key_file go together (a client certificate and its key)")
		}
		if t.InsecureSkipVerify && t.CAFile != "" {
			v.errorf(p+".tls.insecure_skip_verify", "contradicts ca_file: with it no certificate is checked")
		}
		if t.ServerName != "" && strings.ContainsAny(t.ServerName, " /:") {
			v.errorf(p+".tls.server_name", "%q is not a host name", t.ServerName)
		}
	}
	if s == nil {
		return
	}
	ok := false
	for _, m := range saslMechanisms {
		if s.Mechanism == m {
			ok = true
		}
	}
	if !ok {
		v.errorf(p+".sasl.mechanism", "%q: want one of %s", s.Mechanism, strings.Join(saslMechanisms, ", "))
	}
	if s.Username == "" {
		v.errorf(p+".sasl.username", "required")
	}
	if s.Password == "" {
		v.errorf(p+".sasl.password", "required (a secret reference such as ${env:WEIR_SECRET_KAFKA}, or a literal, which is stored with the spec)")
	}
}
