package format

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/weir-stream/weir/dataflow"
)

// orderSchema exercises every Avro type the codec reads.
const orderSchema = `{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "qty", "type": "int"},
    {"name": "price", "type": "double"},
    {"name": "weight", "type": "float"},
    {"name": "paid", "type": "boolean"},
    {"name": "customer", "type": "string"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
    {"name": "blob", "type": "bytes"},
    {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 2}},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "addr", "type": {"type": "record", "name": "Addr", "fields": [
        {"name": "city", "type": "string"},
        {"name": "next", "type": ["null", "Addr"], "default": null}]}},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}
  ]}`

func orderFields() dataflow.Fields {
	return dataflow.FieldsOf(map[string]any{
		"id": int64(7), "qty": int64(-3), "price": 12.5, "weight": 0.25, "paid": true,
		"customer": "ada", "note": "gift", "tags": []any{"a", "b"},
		"attrs": map[string]any{"x": int64(1), "y": int64(-2)}, "status": "PAID",
		"blob": []byte{0, 1, 2}, "code": []byte("XY"), "amount": "-12.34",
		"addr": map[string]any{"city": "Oslo", "next": map[string]any{"city": "Bergen", "next": nil}},
		"ts":   int64(1700000000000),
	})
}

func TestAvroRoundTrip(t *testing.T) {
	c, err := newAvroCodec(orderSchema)
	if err != nil {
		t.Fatal(err)
	}
	in := orderFields()
	b, err := c.encode(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.decode(b)
	if err != nil {
		t.Fatal(err)
	}
	// Schema order, not the input's.
	if out.Name(0) != "id" || out.Name(out.Len()-1) != "ts" {
		t.Fatalf("shape %v", out)
	}
	if !reflect.DeepEqual(out.Map(), in.Map()) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", out.Map(), in.Map())
	}
}

// TestAvroAgainstHamba checks the hand-written binary codec against
// hamba/avro's own: what one writes the other reads.
func TestAvroAgainstHamba(t *testing.T) {
	s := `{"type":"record","name":"R","fields":[
	  {"name":"a","type":"long"},{"name":"b","type":"string"},
	  {"name":"c","type":["null","double"]},{"name":"d","type":{"type":"array","items":"int"}},
	  {"name":"e","type":{"type":"map","values":"boolean"}},{"name":"f","type":"float"}]}`
	schema := avro.MustParse(s)
	c, err := newAvroCodec(s)
	if err != nil {
		t.Fatal(err)
	}
	type R struct {
		A int64           `avro:"a"`
		B string          `avro:"b"`
		C *float64        `avro:"c"`
		D []int32         `avro:"d"`
		E map[string]bool `avro:"e"`
		F float32         `avro:"f"`
	}
	x := 2.5
	want := R{A: -1 << 40, B: "héllo", C: &x, D: []int32{1, -2, math.MaxInt32}, E: map[string]bool{"k": true}, F: 1.5}
	b, err := avro.Marshal(schema, want)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.decode(b)
	if err != nil {
		t.Fatal(err)
	}
	wantMap := map[string]any{"a": int64(-1 << 40), "b": "héllo", "c": 2.5,
		"d": []any{int64(1), int64(-2), int64(math.MaxInt32)}, "e": map[string]any{"k": true}, "f": 1.5}
	if !reflect.DeepEqual(f.Map(), wantMap) {
		t.Fatalf("decoded %#v", f.Map())
	}
	ours, err := c.encode(nil, f)
	if err != nil {
		t.Fatal(err)
	}
	var got R
	if err := avro.Unmarshal(schema, ours, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("hamba read %+v, want %+v", got, want)
	}
}

func TestAvroNonRecordSchema(t *testing.T) {
	c, err := newAvroCodec(`"string"`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.encode(nil, dataflow.FieldsOf(map[string]any{"value": "hi"}))
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.decode(b)
	if err != nil || f.Get("value") != "hi" {
		t.Fatalf("%v %v", f, err)
	}
}

func TestAvroDecodeErrors(t *testing.T) {
	c, err := newAvroCodec(orderSchema)
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.encode(nil, orderFields())
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte(nil), good...), 1),
		"empty":     {},
		"huge len":  {2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10},
	} {
		if _, err := c.decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestAvroEncodeErrors(t *testing.T) {
	c, err := newAvroCodec(orderSchema)
	if err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(m map[string]any){
		"missing field":  func(m map[string]any) { delete(m, "id") },
		"int overflow":   func(m map[string]any) { m["qty"] = int64(1) << 40 },
		"bad enum":       func(m map[string]any) { m["status"] = "LOST" },
		"fixed size":     func(m map[string]any) { m["code"] = "XYZ" },
		"decimal places": func(m map[string]any) { m["amount"] = "1.234" },
		"wrong type":     func(m map[string]any) { m["customer"] = int64(1) },
	} {
		m := orderFields().Map()
		mod(m)
		if _, err := c.encode(nil, dataflow.FieldsOf(m)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A missing nullable field with a default is written as its default.
	m := orderFields().Map()
	delete(m, "note")
	b, err := c.encode(nil, dataflow.FieldsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.decode(b)
	if err != nil || f.Get("note") != nil {
		t.Fatalf("note %v, %v", f.Get("note"), err)
	}
}

func TestDecimal(t *testing.T) {
	for _, s := range []string{"0.00", "1.00", "-1.00", "123.45", "-0.01", "-128.00", "127.99", "99999999.99"} {
		b, err := decimalBytes(s, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := decimalString(b, 2); got != s {
			t.Errorf("%s: got %s (bytes %x)", s, got, b)
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	if _, err := newAvroCodec(`{"type":"record","name":"R","fields":[{"name":"a","type":"nope"}]}`); !errors.Is(err, ErrSchema) {
		t.Fatalf("err %v", err)
	}
}
