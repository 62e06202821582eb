package format

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzAvroDecode feeds arbitrary payloads to the Avro decoder of a schema
// with every type (a recursive record included): no panic, every error
// is ErrMalformed, and what decodes re-encodes to a value that decodes
// the same.
func FuzzAvroDecode(f *testing.F) {
	c, err := newAvroCodec(orderSchema)
	if err != nil {
		f.Fatal(err)
	}
	good, err := c.encode(nil, orderFields())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte{0x0e, 0x05, 0, 0, 0, 0, 0, 0, 0x29, 0x40, 0, 0, 0x80, 0x3e, 1, 6, 'a', 'd', 'a', 0, 1, 0x7f})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, err := c.decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		again, err := c.encode(nil, fields)
		if err != nil {
			t.Fatalf("re-encode %v: %v", fields, err)
		}
		back, err := c.decode(again)
		if err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
		if !reflect.DeepEqual(normNaN(back.Map()), normNaN(fields.Map())) {
			t.Fatalf("round trip:\n%v\n%v", back, fields)
		}
	})
}

// normNaN makes NaN floats comparable.
func normNaN(m map[string]any) map[string]any {
	for k, v := range m {
		if x, ok := v.(float64); ok && x != x {
			m[k] = "NaN"
		}
	}
	return m
}

// FuzzProtobufDecode feeds arbitrary framed bodies (message index and
// payload) to the Protobuf decoder: no panic, every error ErrMalformed.
func FuzzProtobufDecode(f *testing.F) {
	p, err := newProtoSchema(orderProto, nil)
	if err != nil {
		f.Fatal(err)
	}
	enc, err := p.message("Order")
	if err != nil {
		f.Fatal(err)
	}
	good, err := enc.encode(appendIndex(nil, enc.index), orderProtoFields())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{0})
	f.Add([]byte{0, 0x0a, 0x02, 't', '1'})
	f.Add([]byte{4, 2, 0, 0x0a, 0x01, 'x'})
	f.Add([]byte{0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, rest, err := parseIndex(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		c, err := p.codec(idx)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		fields, err := c.decode(rest)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		// What decodes encodes again.
		if _, err := c.encode(nil, fields); err != nil {
			t.Fatalf("re-encode %v: %v", fields, err)
		}
	})
}

// FuzzHeader: the wire-format header parser never panics and agrees with
// appendHeader.
func FuzzHeader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 2})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, rest, err := parseHeader(b)
		if err != nil {
			return
		}
		if got := append(appendHeader(nil, id), rest...); !reflect.DeepEqual(got, b) {
			t.Fatalf("% x != % x", got, b)
		}
	})
}
