package kafka

import (
	"errors"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
)

// decodeMessage decodes a message into record fields. In upsert mode (the
// source reads a table's changelog, spec.KafkaSource.Upsert) the message
// key goes into the key field, overriding a value field of that name, and
// a message with a null value is a tombstone: the key and
// spec.DeletedField true, unchecked against the schema, without event
// time.
func (d *decoder) decodeMessage(key, value []byte) (f dataflow.Fields, tombstone bool, err error) {
	if d.upsertKey == "" {
		f, err = d.decode(value)
		return f, false, err
	}
	if key == nil {
		return dataflow.Fields{}, false, errors.New("upsert: the message has no key (a table's changelog is keyed)")
	}
	if value == nil {
		if d.tombShape == nil {
			if d.tombShape, err = dataflow.NewShape(d.upsertKey, spec.DeletedField); err != nil {
				return dataflow.Fields{}, false, err
			}
		}
		return dataflow.NewFields(d.tombShape, []any{string(key), true}), true, nil
	}
	if f, err = d.decodeFields(value); err != nil {
		return f, false, err
	}
	d.names = d.names[:0]
	vals := make([]any, 0, f.Len()+1)
	for name, v := range f.All() {
		if name != d.upsertKey {
			d.names = append(d.names, name)
			vals = append(vals, v)
		}
	}
	d.names = append(d.names, d.upsertKey)
	vals = append(vals, string(key))
	shape, err := d.shapes.Shape(d.names)
	if err != nil {
		return dataflow.Fields{}, false, err
	}
	f = dataflow.NewFields(shape, vals)
	if d.schema != nil {
		f, err = d.schema.Check(f)
	}
	return f, false, err
}
