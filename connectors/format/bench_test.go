package format

import (
	"testing"

	"github.com/weir-stream/weir/dataflow"
)

// accessLog is the record the bench driver's formats section reads.
var accessLog = dataflow.FieldsOf(map[string]any{
	"ip": "10.0.12.84", "ts": int64(1_700_000_000_000), "url": "/api/v1/items",
	"status": int64(200), "bytes": int64(3456), "ua": "Mozilla/5.0 (X11; Linux x86_64) bench",
})

const accessLogAvro = `{"type":"record","name":"AccessLog","fields":[
  {"name":"ip","type":"string"},{"name":"ts","type":"long"},{"name":"url","type":"string"},
  {"name":"status","type":"long"},{"name":"bytes","type":"long"},{"name":"ua","type":"string"}]}`

const accessLogProto = `syntax = "proto3";
message AccessLog { string ip = 1; int64 ts = 2; string url = 3; int64 status = 4; int64 bytes = 5; string ua = 6; }`

// BenchmarkAvroDecode is one access-log value through the Avro codec
// (payload only; the registry lookup is cached per id).
func BenchmarkAvroDecode(b *testing.B) {
	c, err := newAvroCodec(accessLogAvro)
	if err != nil {
		b.Fatal(err)
	}
	v, err := c.encode(nil, accessLog)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if _, err := c.decode(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProtobufDecode(b *testing.B) {
	p, err := newProtoSchema(accessLogProto, nil)
	if err != nil {
		b.Fatal(err)
	}
	c, err := p.message("")
	if err != nil {
		b.Fatal(err)
	}
	v, err := c.encode(nil, accessLog)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if _, err := c.decode(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAvroEncode(b *testing.B) {
	c, err := newAvroCodec(accessLogAvro)
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = c.encode(buf[:0], accessLog); err != nil {
			b.Fatal(err)
		}
	}
}
