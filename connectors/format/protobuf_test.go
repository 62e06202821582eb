package format

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/weir-stream/weir/dataflow"
)

const orderProto = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Header { string trace = 1; }
message Order {
  int64 id = 1;
  int32 qty = 2;
  double price = 3;
  bool paid = 4;
  string customer = 5;
  repeated string tags = 6;
  map<string, int64> attrs = 7;
  enum Status { NEW = 0; PAID = 1; }
  Status status = 8;
  bytes blob = 9;
  Addr addr = 10;
  optional string note = 11;
  uint64 big = 12;
  google.protobuf.Timestamp at = 13;
  message Addr { string city = 1; }
}`

func orderProtoFields() dataflow.Fields {
	return dataflow.FieldsOf(map[string]any{
		"id": int64(7), "qty": int64(-3), "price": 12.5, "paid": true, "customer": "ada",
		"tags": []any{"a", "b"}, "attrs": map[string]any{"x": int64(1)}, "status": "PAID",
		"blob": []byte{0, 1}, "addr": map[string]any{"city": "Oslo"}, "note": "gift", "big": int64(1 << 40),
		"at": map[string]any{"seconds": int64(1700000000), "nanos": int64(5)},
	})
}

func TestProtobufRoundTrip(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	reg := newReg(t, fake.URL())
	ctx := context.Background()
	enc, err := NewEncoder(ctx, reg, EncoderConfig{Format: Protobuf, Subject: "orders-value", Schema: orderProto, Message: "shop.Order"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := enc.Append(nil, orderProtoFields())
	if err != nil {
		t.Fatal(err)
	}
	// Order is the second top-level message: the index array is [1].
	if !reflect.DeepEqual(b[5:7], []byte{2, 2}) {
		t.Fatalf("message index bytes % x", b[5:7])
	}
	dec, _ := NewDecoder(Protobuf, reg, nil)
	f, err := dec.Decode(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Map(), orderProtoFields().Map()) {
		t.Fatalf("got  %#v\nwant %#v", f.Map(), orderProtoFields().Map())
	}
	if f.Name(0) != "id" || f.Name(1) != "qty" {
		t.Fatalf("not in declaration order: %v", f)
	}

	// Unset fields: defaults without presence, null with it.
	b, err = enc.Append(nil, dataflow.FieldsOf(map[string]any{"id": int64(1)}))
	if err != nil {
		t.Fatal(err)
	}
	f, err = dec.Decode(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Get("qty") != int64(0) || f.Get("customer") != "" || f.Get("note") != nil || f.Get("addr") != nil || f.Get("status") != "NEW" {
		t.Fatalf("defaults: %v", f)
	}

	// The first message by default, written with the single-byte index.
	hdr, err := NewEncoder(ctx, reg, EncoderConfig{Format: Protobuf, Subject: "orders-value", Schema: orderProto})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = hdr.Append(nil, dataflow.FieldsOf(map[string]any{"trace": "t1"}))
	if b[5] != 0 {
		t.Fatalf("index byte %x", b[5])
	}
	if f, err = dec.Decode(ctx, b); err != nil || f.Get("trace") != "t1" {
		t.Fatalf("%v %v", f, err)
	}
	// A nested message by its index path (map entries count as nested
	// messages in the descriptor, as in Confluent's serializers).
	addr, err := NewEncoder(ctx, reg, EncoderConfig{Format: Protobuf, Subject: "orders-value", Schema: orderProto, Message: "shop.Order.Addr"})
	if err != nil {
		t.Fatal(err)
	}
	if len(addr.pc.index) != 2 || addr.pc.index[0] != 1 {
		t.Fatalf("index %v", addr.pc.index)
	}
	b = appendIndex(appendHeader(nil, enc.ID()), addr.pc.index)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, "Bergen")
	if f, err = dec.Decode(ctx, b); err != nil || f.Get("city") != "Bergen" {
		t.Fatalf("nested: %v %v", f, err)
	}
}

func TestProtobufErrors(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	reg := newReg(t, fake.URL())
	ctx := context.Background()
	id := mustRegisterType(t, fake, "o-value", orderProto, sr.TypeProtobuf)
	dec, _ := NewDecoder(Protobuf, reg, nil)
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"no index":     {appendHeader(nil, id), "message-index"},
		"bad index":    {appendIndex(appendHeader(nil, id), []int{9}), "no message 9"},
		"long index":   {append(appendHeader(nil, id), 0x7e), "length 63"},
		"bad payload":  {append(appendIndex(appendHeader(nil, id), []int{1}), 0x0a, 0x05, 'a'), "shop.Order"},
		"unknown type": {append(appendHeader(nil, 999), 0), "schema id 999"},
	} {
		_, err := dec.Decode(ctx, c.b)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want ErrMalformed with %q", name, err, c.want)
		}
	}
	if _, err := NewEncoder(ctx, reg, EncoderConfig{Format: Protobuf, Subject: "o-value", Schema: "message {"}); !errors.Is(err, ErrSchema) {
		t.Errorf("bad schema: %v", err)
	}
	if _, err := NewEncoder(ctx, reg, EncoderConfig{Format: Protobuf, Subject: "o-value", Schema: orderProto, Message: "Nope"}); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("bad message: %v", err)
	}
	enc, err := NewEncoder(ctx, reg, EncoderConfig{Format: Protobuf, Subject: "o-value", Schema: orderProto, Message: "Order"})
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]map[string]any{
		"qty range": {"qty": int64(1) << 40},
		"enum":      {"status": "LOST"},
		"type":      {"customer": true},
		"negative":  {"big": int64(-1)},
	} {
		if _, err := enc.Append(nil, dataflow.FieldsOf(f)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestProtobufReferences: a schema importing another subject's schema.
func TestProtobufReferences(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	mustRegisterType(t, fake, "common.proto", `syntax = "proto3"; package common; message Money { int64 cents = 1; }`, sr.TypeProtobuf)
	id, _, err := fake.RegisterSchema("pay-value", sr.Schema{
		Type:       sr.TypeProtobuf,
		Schema:     `syntax = "proto3"; import "common.proto"; message Pay { common.Money amount = 1; }`,
		References: []sr.SchemaReference{{Name: "common.proto", Subject: "common.proto", Version: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := NewDecoder(Protobuf, newReg(t, fake.URL()), nil)
	b := append(appendHeader(nil, id), 0)
	inner := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 250)
	b = protowire.AppendBytes(protowire.AppendTag(b, 1, protowire.BytesType), inner)
	f, err := dec.Decode(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Get("amount"), map[string]any{"cents": int64(250)}) {
		t.Fatalf("got %v", f)
	}
}
