package optest_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/worker/operator/optest"
)

// recorder catches the harness's complaints instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// mutator sets a field on its input in place, which operators must not do.
type mutator struct{}

func (mutator) Open(*dataflow.Context) error { return nil }
func (mutator) Process(r *dataflow.Record, out dataflow.Output) error {
	r.Fields.Values()[0] = int64(2)
	if err := out.EmitSide("side", r); err != nil {
		return err
	}
	return out.Emit(r)
}
func (mutator) Close(dataflow.Output) error { return nil }

func TestHarnessCatchesMutation(t *testing.T) {
	rec := &recorder{TB: t}
	h := optest.New(rec, mutator{}, nil)
	if err := h.ProcessRecord(dataflow.Record{Fields: dataflow.FieldsOf(map[string]any{"x": int64(1)})}); err != nil {
		t.Fatal(err)
	}
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "changed its input") {
		t.Fatalf("complaints %q", rec.errs)
	}
}

func TestHarnessCollects(t *testing.T) {
	h := optest.New(t, passthrough{}, nil)
	if err := h.ProcessRecords(dataflow.Record{Key: "a"}, dataflow.Record{Key: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessWatermark(5); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Snapshot(1); err == nil {
		t.Error("snapshot of a stateless operator")
	}
	if err := h.Restore(nil); err == nil {
		t.Error("restore of a stateless operator")
	}
	if got := h.Records(); len(got) != 2 || got[1].Key != "b" {
		t.Errorf("records %v", got)
	}
	if got := h.Watermarks(); !reflect.DeepEqual(got, []int64{5}) {
		t.Errorf("watermarks %v", got)
	}
	if got := h.Events(); len(got) != 3 || got[2].Kind != dataflow.KindWatermark {
		t.Errorf("events %v", got)
	}
	h.Clear()
	if err := h.EndOfStream(); err != nil {
		t.Fatal(err)
	}
	if got := h.Watermarks(); !reflect.DeepEqual(got, []int64{dataflow.MaxWatermark}) {
		t.Errorf("watermarks after end of stream %v", got)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := optest.SubtaskContext("n", 128, 4, 3)
	if ctx.KeyGroups != (dataflow.KeyGroupRange{Start: 96, End: 127}) || ctx.Subtask != 3 {
		t.Errorf("subtask context %+v", ctx)
	}
}

type passthrough struct{}

func (passthrough) Open(*dataflow.Context) error                          { return nil }
func (passthrough) Process(r *dataflow.Record, out dataflow.Output) error { return out.Emit(r) }
func (passthrough) Close(dataflow.Output) error                           { return nil }
