package spec

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		if exp, err := ExpandEnv(data, noEnv); err == nil {
			f.Add(exp)
		}
	}
	f.Add([]byte(base))
	f.Add([]byte("name: x\npipeline:\n  - source: {datagen: {}}\n  - {name: w, inputs: [source-0, w.late], union: {}}\n  - sink: {discard: {}}\n"))
	f.Add([]byte(processSpec))
	f.Add([]byte("name: s\npipeline:\n  - source: {kafka: {brokers: [b:1], topic: t, tls: {ca_file: c, cert_file: x, key_file: k}, sasl: {mechanism: PLAIN, username: u, password: '${env:WEIR_SECRET_P}'}}}\n  - sink: {kafka: {brokers: [b:1], topic: o, tls: true}}\n"))
	f.Add([]byte("name: s\npipeline:\n  - source: {kafka: {brokers: [b:1], topic: t, format: avro, schema_registry: {url: 'https://r:8081', username: u, password: '${env:WEIR_SECRET_R}', tls: true, timeout: 5s}}}\n  - sink: {kafka: {brokers: [b:1], topic: o, format: protobuf, schema_registry: {url: 'http://r', subject: o-v, message: M, schema: 'syntax = \"proto3\"; message M { int64 a = 1; }', bearer_token: t}}}\n"))
	f.Add([]byte(dedupSpec))
	f.Add([]byte(runningSpec))
	f.Add([]byte(topNSpec))
	f.Add([]byte(joinSpec))
	f.Fuzz(func(t *testing.T, data []byte) {
		if exp, err := ExpandEnv(data, noEnv); err == nil {
			data = exp
		}
		j, err := Parse(data)
		if err == nil {
			if j == nil {
				t.Fatal("nil job without error")
			}
			// A valid job stays valid.
			if err := j.Validate(); err != nil {
				t.Fatalf("parsed job fails Validate: %v", err)
			}
		} else if j != nil {
			t.Fatal("job with error")
		}
	})
}
