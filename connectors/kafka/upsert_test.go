package kafka

import (
	"reflect"
	"testing"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// In upsert mode the message key becomes a field (over a value field of
// the same name), a null value is a tombstone, and a message without a key
// is an error.
func TestDecodeUpsert(t *testing.T) {
	d := decoder{upsertKey: "id"}
	f, tomb, err := d.decodeMessage([]byte("u1"), []byte(`{"name": "ann", "id": 7}`))
	if err != nil || tomb || !reflect.DeepEqual(f.Map(), map[string]any{"name": "ann", "id": "u1"}) {
		t.Fatalf("update: %v %v %v", f, tomb, err)
	}
	f, tomb, err = d.decodeMessage([]byte("u1"), nil)
	if err != nil || !tomb || !reflect.DeepEqual(f.Map(), map[string]any{"id": "u1", spec.DeletedField: true}) {
		t.Fatalf("tombstone: %v %v %v", f, tomb, err)
	}
	if _, _, err := d.decodeMessage(nil, []byte(`{}`)); err == nil {
		t.Fatal("no error for a message without a key")
	}
	// The schema is checked on updates, not on tombstones.
	d.schema, _ = dataflow.NewSchema(map[string]string{"name": "string", "id": "string"})
	if _, _, err := d.decodeMessage([]byte("u2"), []byte(`{"name": 3}`)); err == nil {
		t.Fatal("schema not checked")
	}
	if _, tomb, err := d.decodeMessage([]byte("u2"), nil); err != nil || !tomb {
		t.Fatalf("tombstone with a schema: %v %v", tomb, err)
	}
	// Without upsert a null value is what it always was: an error.
	if _, _, err := (&decoder{}).decodeMessage([]byte("k"), nil); err == nil {
		t.Fatal("null value accepted outside upsert mode")
	}
}

func FuzzDecodeUpsert(f *testing.F) {
	f.Add([]byte("k"), []byte(`{"a":1}`), false)
	f.Add([]byte("k"), []byte(nil), true)
	f.Add([]byte(nil), []byte(`{"key":"x"}`), false)
	f.Fuzz(func(t *testing.T, key, value []byte, null bool) {
		if null {
			value = nil
		}
		d := decoder{upsertKey: "key"}
		m, tomb, err := d.decodeMessage(key, value)
		if err != nil {
			return
		}
		if got, ok := m.Get("key").(string); !ok || got != string(key) {
			t.Fatalf("key field %#v, want %q", m.Get("key"), key)
		}
		if tomb != (value == nil) || tomb != (m.Get(spec.DeletedField) == true) {
			t.Fatalf("tombstone %v for value %q: %v", tomb, value, m)
		}
	})
}
