package command

import (
	"os"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weir-stream/weir/connectors/kafka"
	"github.com/weir-stream/weir/dataflow/spec"
)

// kafkaClientFlags are the TLS and SASL settings of the CLI's own Kafka
// clients (loadgen, verify), the same as a spec's kafka tls/sasl blocks.
type kafkaClientFlags struct {
	tls                       bool
	ca, cert, key, serverName string
	mechanism, user, password string
}

func (f *kafkaClientFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.tls, "kafka-tls", false, "connect to Kafka over TLS (system roots unless --kafka-tls-ca)")
	fs.StringVar(&f.ca, "kafka-tls-ca", "", "PEM file of the CA the brokers' certificates are checked against (implies --kafka-tls)")
	fs.StringVar(&f.cert, "kafka-tls-cert", "", "PEM client certificate for Kafka (with --kafka-tls-key)")
	fs.StringVar(&f.key, "kafka-tls-key", "", "PEM key of --kafka-tls-cert")
	fs.StringVar(&f.serverName, "kafka-tls-server-name", "", "host name to check in the brokers' certificates")
	fs.StringVar(&f.mechanism, "kafka-sasl-mechanism", "SCRAM-SHA-512", "SASL mechanism with --kafka-sasl-user: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&f.user, "kafka-sasl-user", "", "SASL user name for Kafka")
	fs.StringVar(&f.password, "kafka-sasl-password", "", "SASL password: ${env:WEIR_SECRET_NAME} or ${file:/path} (under $WEIR_SECRETS_DIR); a literal is visible in the process list")
}

// security checks the flags as a spec block would be and returns the
// function that applies them to a client's config.
func (f *kafkaClientFlags) security() (func(*sarama.Config), error) {
	var t *spec.KafkaTLS
	if f.tls || f.ca != "" || f.cert != "" || f.key != "" || f.serverName != "" {
		t = &spec.KafkaTLS{CAFile: f.ca, CertFile: f.cert, KeyFile: f.key, ServerName: f.serverName}
		if (f.cert == "") != (f.key == "") {
			return nil, usagef("--kafka-tls-cert and --kafka-tls-key go together")
		}
	}
	var s *spec.KafkaSASL
	if f.user != "" || f.password != "" {
		if f.user == "" || f.password == "" {
			return nil, usagef("--kafka-sasl-user and --kafka-sasl-password go together")
		}
		switch f.mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return nil, usagef("--kafka-sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", f.mechanism)
		}
		s = &spec.KafkaSASL{Mechanism: f.mechanism, Username: f.user, Password: f.password}
	}
	sec, err := kafka.NewSecurity(t, s)
	if err != nil {
		return nil, err
	}
	return sec.Apply, nil
}

// addBrokersFlag adds --brokers, the one name of the Kafka brokers a client
// verb connects to. Its default comes from KAFKA_BROKERS, the variable the
// example job spec reads, so one export points the job and the tools at
// the same broker.
func addBrokersFlag(c *cobra.Command, brokers *string) {
	def := os.Getenv("KAFKA_BROKERS")
	if def == "" {
		def = "127.0.0.1:9092"
	}
	c.Flags().StringVar(brokers, "brokers", def, "Kafka bootstrap brokers, comma separated; KAFKA_BROKERS sets the default")
}
