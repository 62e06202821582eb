// Package deps pins modules the project is about to use while their first
// importers are being written. Removed once every module has a real importer.
package deps

import (
	_ "github.com/IBM/sarama"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/cobra"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "github.com/twmb/franz-go/pkg/kmsg"
	_ "google.golang.org/grpc"
	_ "gopkg.in/yaml.v3"
)
