package dataflow

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func sampleElements() []Element {
	return []Element{
		{Kind: KindRecord, Record: Record{Time: NoTime}},
		{Kind: KindRecord, Record: Record{
			Key:  "user-7",
			Time: 1_700_000_000_123,
			Fields: FieldsOf(map[string]any{
				"n":     int64(-42),
				"big":   int64(math.MaxInt64),
				"small": int64(math.MinInt64),
				"f":     3.25,
				"ok":    true,
				"no":    false,
				"none":  nil,
				"s":     "héllo",
				"empty": "",
				"list":  []any{int64(1), "two", []any{}, map[string]any{"x": 1.5}},
				"map":   map[string]any{"a": map[string]any{"b": []any{nil, true}}},
			}),
			Origin:          Origin{Source: "src", Topic: "t", Partition: 3, Offset: 99},
			SourceWatermark: 1700000000123,
		}},
		{Kind: KindRecord, Record: Record{Time: 5, SourceWatermark: -7}},
		{Kind: KindRecord, Record: Record{Key: []any{int64(1), "a"}, Time: -5, Fields: FieldsOf(map[string]any{})}},
		{Kind: KindRecord, Record: Record{Key: int64(0), Time: 0, Origin: Origin{Source: "gen", Offset: 1}}},
		{Kind: KindRecord, Record: Record{Key: true, Time: NoTime, Fields: FieldsOf(map[string]any{"b": []byte{0, 1}})}},
		{Kind: KindWatermark, Watermark: 12345},
		{Kind: KindWatermark, Watermark: MaxWatermark},
		{Kind: KindWatermark, Watermark: math.MinInt64},
		{Kind: KindBarrier, Barrier: Barrier{ID: 7, Timestamp: 1_700_000_000_000, Savepoint: true, Stop: true}},
		{Kind: KindBarrier, Barrier: Barrier{ID: 8}},
		{Kind: KindBarrier, Barrier: Barrier{ID: 9, EndOfInput: true}},
		{Kind: KindIdle, Idle: true},
		{Kind: KindIdle, Idle: false},
		{Kind: KindEndOfStream},
	}
}

func encodeAll(t testing.TB, es []Element) []byte {
	t.Helper()
	var buf []byte
	for i := range es {
		var err error
		buf, err = AppendElement(buf, &es[i])
		if err != nil {
			t.Fatalf("encode %d: %v", i, err)
		}
	}
	return buf
}

func TestCodecRoundTrip(t *testing.T) {
	in := sampleElements()
	buf := encodeAll(t, in)
	out, err := AppendDecoded(nil, buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip mismatch\n in: %#v\nout: %#v", in, out)
	}
}

func TestCodecNormalizesIntegerTypes(t *testing.T) {
	e := Element{Kind: KindRecord, Record: Record{Key: 5, Time: NoTime, Fields: FieldsOf(map[string]any{
		"a": int32(-3), "b": uint8(200), "c": float32(1.5), "d": uint64(7),
	})}}
	buf, err := AppendElement(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	out, err := AppendDecoded(nil, buf)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": int64(-3), "b": int64(200), "c": 1.5, "d": int64(7)}
	if out[0].Record.Key != int64(5) || !reflect.DeepEqual(out[0].Record.Fields.Map(), want) {
		t.Fatalf("got %#v", out[0].Record)
	}
}

func TestCodecRejectsUnencodable(t *testing.T) {
	for name, e := range map[string]Element{
		"struct field": {Kind: KindRecord, Record: Record{Fields: FieldsOf(map[string]any{"x": struct{}{}})}},
		"chan key":     {Kind: KindRecord, Record: Record{Key: make(chan int)}},
		"uint overflow": {Kind: KindRecord, Record: Record{Fields: FieldsOf(map[string]any{
			"x": uint64(math.MaxUint64)})}},
		"bad kind": {Kind: 0},
	} {
		dst := []byte{1, 2, 3}
		got, err := AppendElement(dst, &e)
		if !errors.Is(err, ErrUnencodable) {
			t.Errorf("%s: err = %v, want ErrUnencodable", name, err)
		}
		if len(got) != 3 {
			t.Errorf("%s: dst not restored: %v", name, got)
		}
	}
}

func TestCodecDeepNesting(t *testing.T) {
	var v any = "leaf"
	for range maxValueDepth + 5 {
		v = []any{v}
	}
	e := Element{Kind: KindRecord, Record: Record{Fields: FieldsOf(map[string]any{"deep": v})}}
	if _, err := AppendElement(nil, &e); !errors.Is(err, ErrUnencodable) {
		t.Fatalf("encode too deep: %v", err)
	}
	// A hand-made frame nesting lists beyond the limit is refused, not
	// recursed into.
	buf := []byte{codecVersion<<4 | byte(KindRecord), recHasKey}
	for range 10_000 {
		buf = append(buf, valList, 1)
	}
	buf = append(buf, valNil)
	err := DecodeElements(buf, func(*Element) error { return nil })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("decode too deep: %v", err)
	}
}

func TestCodecCorruptInputs(t *testing.T) {
	full := encodeAll(t, sampleElements())
	// Every strict prefix that cuts an element must fail with an offset.
	ends := map[int]bool{}
	off := 0
	for _, e := range sampleElements() {
		b, _ := AppendElement(nil, &e)
		off += len(b)
		ends[off] = true
	}
	for n := 1; n < len(full); n++ {
		err := DecodeElements(full[:n], func(*Element) error { return nil })
		if ends[n] {
			if err != nil {
				t.Fatalf("prefix %d ends on an element boundary, got %v", n, err)
			}
			continue
		}
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("prefix %d: err = %v, want CorruptError", n, err)
		}
		if ce.Offset < 0 || ce.Offset > n {
			t.Fatalf("prefix %d: offset %d out of range", n, ce.Offset)
		}
	}
	cases := map[string][]byte{
		"bad version":   {0x20 | byte(KindEndOfStream)},
		"bad kind":      {codecVersion<<4 | 0x0f},
		"huge string":   {codecVersion<<4 | byte(KindRecord), recHasOrigin, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge map":      {codecVersion<<4 | byte(KindRecord), recHasFields, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"bad flags":     {codecVersion<<4 | byte(KindRecord), 0x80},
		"bad value":     {codecVersion<<4 | byte(KindRecord), recHasKey, 0x77},
		"bad idle":      {codecVersion<<4 | byte(KindIdle), 2},
		"short float":   {codecVersion<<4 | byte(KindRecord), recHasKey, valFloat, 1, 2},
		"bad varint":    {codecVersion<<4 | byte(KindWatermark), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"barrier flags": {codecVersion<<4 | byte(KindBarrier), 1, 1, 0x08},
		"field twice":   {codecVersion<<4 | byte(KindRecord), recHasFields, 2, 1, 'a', valNil, 1, 'a', valTrue},
	}
	for name, b := range cases {
		err := DecodeElements(b, func(*Element) error { return nil })
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestCodecCallbackErrorStops(t *testing.T) {
	buf := encodeAll(t, sampleElements())
	stop := errors.New("stop")
	n := 0
	err := DecodeElements(buf, func(*Element) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("err=%v n=%d", err, n)
	}
}

func FuzzDecodeElements(f *testing.F) {
	f.Add(encodeAll(f, sampleElements()))
	for _, e := range sampleElements() {
		b, _ := AppendElement(nil, &e)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out []Element
		out, err := AppendDecoded(out, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		// Whatever decodes must encode again and decode to the same count.
		re := encodeAll(t, out)
		again, err := AppendDecoded(nil, re)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(again) != len(out) {
			t.Fatalf("re-decode gave %d elements, want %d", len(again), len(out))
		}
	})
}

func benchRecord() Element {
	return Element{Kind: KindRecord, Record: Record{
		Key:  "user-1234",
		Time: 1_700_000_000_000,
		Fields: FieldsOf(map[string]any{
			"user": "user-1234", "path": "/api/v1/items", "status": int64(200),
			"bytes": int64(5123), "latency_ms": 12.5,
		}),
		Origin: Origin{Topic: "access", Partition: 3, Offset: 123456},
	}}
}

func BenchmarkEncodeRecord(b *testing.B) {
	e := benchRecord()
	buf := make([]byte, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendElement(buf[:0], &e); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeRecord decodes frames of 256 records, as the exchange
// does; ns/op is per record.
func BenchmarkDecodeRecord(b *testing.B) {
	e := benchRecord()
	var buf []byte
	const batch = 256
	for range batch {
		buf, _ = AppendElement(buf, &e)
	}
	b.SetBytes(int64(len(buf) / batch))
	b.ReportAllocs()
	out := make([]Element, 0, batch)
	for i := 0; i < b.N; i += batch {
		var err error
		if out, err = AppendDecoded(out[:0], buf); err != nil {
			b.Fatal(err)
		}
	}
}
