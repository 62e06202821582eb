package sinks

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

type nopOut struct{ wms []int64 }

func (o *nopOut) Emit(*dataflow.Record) error             { return nil }
func (o *nopOut) EmitSide(string, *dataflow.Record) error { return nil }
func (o *nopOut) EmitWatermark(wm int64) error            { o.wms = append(o.wms, wm); return nil }

func rec(f map[string]any) *dataflow.Record {
	return &dataflow.Record{Fields: dataflow.FieldsOf(f), Time: dataflow.NoTime}
}

// open builds and opens: open(t)(NewFile(...)).
func open(t *testing.T) func(dataflow.Operator, error) dataflow.Operator {
	return func(op dataflow.Operator, err error) dataflow.Operator {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Open(&dataflow.Context{}); err != nil {
			t.Fatal(err)
		}
		return op
	}
}

func stdoutNode(format string) *spec.Node {
	return &spec.Node{Name: "out", Sink: &spec.Sink{Stdout: &spec.StdoutSink{Format: format}}}
}

func TestStdoutJSON(t *testing.T) {
	var buf bytes.Buffer
	out := &nopOut{}
	op := open(t)(NewStdoutTo(&buf, stdoutNode(""), &dataflow.Context{}))
	for _, f := range []map[string]any{
		{"b": int64(2), "a": "x<y>&", "c": []any{1.5, nil, true}},
		{"m": map[string]any{"k": "v"}},
	} {
		if err := op.Process(rec(f), out); err != nil {
			t.Fatal(err)
		}
	}
	// A watermark flushes and is forwarded.
	if err := op.(dataflow.WatermarkHandler).ProcessWatermark(7, out); err != nil || len(out.wms) != 1 {
		t.Fatalf("watermark: %v %v", err, out.wms)
	}
	want := `{"a":"x<y>&","b":2,"c":[1.5,null,true]}` + "\n" + `{"m":{"k":"v"}}` + "\n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
	if err := op.Close(out); err != nil {
		t.Fatal(err)
	}
	if err := op.Close(out); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestStdoutRawAndErrors(t *testing.T) {
	var buf bytes.Buffer
	out := &nopOut{}
	op := open(t)(NewStdoutTo(&buf, stdoutNode("raw"), &dataflow.Context{}))
	_ = op.Process(rec(map[string]any{"value": "hello world"}), out)
	_ = op.Process(rec(map[string]any{"value": int64(3)}), out)
	err := op.Process(&dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"x": 1}), Origin: dataflow.Origin{Source: "s", Offset: 4}}, out)
	var re *dataflow.RecordError
	if !errors.As(err, &re) || re.Origin.Offset != 4 {
		t.Fatalf("record without value: %v", err)
	}
	_ = op.Close(out)
	if buf.String() != "hello world\n3\n" {
		t.Fatalf("got %q", buf.String())
	}

	// With the skip policy a record that does not encode is counted and
	// dropped.
	var c dataflow.Counters
	buf.Reset()
	op = open(t)(NewStdoutTo(&buf, stdoutNode(""), &dataflow.Context{OnError: dataflow.SkipOnError{Counters: &c}}))
	if err := op.Process(rec(map[string]any{"x": math.NaN()}), out); err != nil || c.SkippedInvalid.Load() != 1 {
		t.Fatalf("NaN: %v, skipped %d", err, c.SkippedInvalid.Load())
	}
	_ = op.Close(out)
	if buf.Len() != 0 {
		t.Fatalf("wrote %q for a record that does not encode", buf.String())
	}
	if _, err := NewStdoutTo(&buf, stdoutNode("xml"), &dataflow.Context{}); err == nil {
		t.Fatal("format xml accepted")
	}
}

func TestFileAppendsPerSubtask(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "out.jsonl")
	n := &spec.Node{Name: "f", Sink: &spec.Sink{File: &spec.FileSink{Path: path}}}
	out := &nopOut{}
	for round := range 2 {
		op := open(t)(NewFile(n, &dataflow.Context{Subtask: 1, Parallelism: 2}))
		if Path(op) != path+"-1" {
			t.Fatalf("path %s", Path(op))
		}
		for i := range 3 {
			if err := op.Process(rec(map[string]any{"i": int64(round*3 + i)}), out); err != nil {
				t.Fatal(err)
			}
		}
		// Buffered until Close.
		if b, _ := os.ReadFile(path + "-1"); round == 0 && len(b) != 0 {
			t.Fatalf("written before close: %q", b)
		}
		if err := op.Close(out); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path + "-1")
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n{\"i\":3}\n{\"i\":4}\n{\"i\":5}\n"
	if string(b) != want {
		t.Fatalf("file has %q", b)
	}
	// Parallelism 1: the path as given.
	op := open(t)(NewFile(n, &dataflow.Context{Parallelism: 1}))
	if Path(op) != path {
		t.Fatalf("path %s", Path(op))
	}
	_ = op.Close(out)

	bad := &spec.Node{Name: "f", Sink: &spec.Sink{File: &spec.FileSink{Path: filepath.Join(dir, "sub", "out.jsonl-1", "x")}}}
	op, err = NewFile(bad, &dataflow.Context{})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Open(&dataflow.Context{}); err == nil {
		t.Fatal("opened a file under a file")
	}
	if err := op.Close(out); err != nil {
		t.Fatal("Close after failed Open:", err)
	}
	if _, err := NewFile(&spec.Node{Name: "f", Sink: &spec.Sink{File: &spec.FileSink{}}}, &dataflow.Context{}); err == nil {
		t.Fatal("file sink without path accepted")
	}
}

func TestDiscardCounts(t *testing.T) {
	op, err := NewDiscard(&spec.Node{Name: "d", Sink: &spec.Sink{Discard: &struct{}{}}}, &dataflow.Context{})
	if err != nil {
		t.Fatal(err)
	}
	_ = op.Open(&dataflow.Context{})
	for range 5 {
		_ = op.Process(rec(nil), &nopOut{})
	}
	if op.(*Discard).Count() != 5 {
		t.Fatal("count")
	}
	if _, err := NewDiscard(&spec.Node{Name: "d", Sink: &spec.Sink{}}, nil); err == nil {
		t.Fatal("discard without discard spec")
	}
}
