package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/weir-stream/weir/connectors/eventtime"
	"github.com/weir-stream/weir/connectors/format"
	"github.com/weir-stream/weir/dataflow"
)

// Formats of message values. The registry formats (avro, protobuf,
// json_schema) are connectors/format's.
const (
	FormatJSON = "json"
	FormatRaw  = "raw"
)

// validFormat reports whether a source or sink reads or writes f.
func validFormat(f string) bool {
	return f == FormatJSON || f == FormatRaw || format.Format(f).Valid()
}

// decoder turns a message value into record fields. It reuses its reader
// and shapes, so it is not safe for concurrent use.
type decoder struct {
	raw    bool
	schema *dataflow.Schema // the source's declared types; nil: none
	rd     bytes.Reader
	shapes dataflow.ShapeCache
	names  []string
	// upsertKey is the field that receives the message key in upsert
	// mode ("" otherwise; upsert.go).
	upsertKey string
	tombShape *dataflow.Shape
	// framed decodes the Confluent wire format through a schema
	// registry (formats avro, protobuf, json_schema; nil otherwise),
	// with ctx, the Run context, for its registry requests.
	framed *format.Decoder
	ctx    context.Context
}

// rawShape is the shape of a raw-format record: its value in field "value".
var rawShape = dataflow.MustShape("value")

func (d *decoder) decode(value []byte) (dataflow.Fields, error) {
	f, err := d.decodeFields(value)
	if err != nil || d.schema == nil {
		return f, err
	}
	return d.schema.Check(f)
}

func (d *decoder) decodeFields(value []byte) (dataflow.Fields, error) {
	if d.raw {
		return dataflow.NewFields(rawShape, []any{string(value)}), nil
	}
	if d.framed != nil {
		ctx := d.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		return d.framed.Decode(ctx, value)
	}
	return d.jsonFields(value)
}

// jsonFields decodes a JSON object into fields in sorted order.
func (d *decoder) jsonFields(value []byte) (dataflow.Fields, error) {
	obj, err := d.decodeJSON(value)
	if err != nil {
		return dataflow.Fields{}, err
	}
	// Fields in sorted order (JSON objects decode into a map, which
	// forgets theirs), under a shape shared with the records before.
	d.names = d.names[:0]
	for k := range obj {
		d.names = append(d.names, k)
	}
	slices.Sort(d.names)
	shape, err := d.shapes.Shape(d.names)
	if err != nil {
		return dataflow.Fields{}, err // a map has no duplicate keys
	}
	vals := make([]any, len(d.names))
	for i, k := range d.names {
		vals[i] = obj[k]
	}
	return dataflow.NewFields(shape, vals), nil
}

// decodeJSON decodes one JSON object. Integers become int64 and other
// numbers float64, so values match dataflow.Record's types.
func (d *decoder) decodeJSON(value []byte) (map[string]any, error) {
	d.rd.Reset(value)
	dec := json.NewDecoder(&d.rd)
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("invalid JSON: empty message")
		}
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a JSON object, got %s", jsonKind(v))
	}
	convertNumbers(obj)
	return obj, nil
}

func convertNumbers(m map[string]any) {
	for k, v := range m {
		m[k] = convertValue(v)
	}
}

func convertValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, _ := strconv.ParseFloat(string(x), 64) // out of range gives ±Inf
		return f
	case map[string]any:
		convertNumbers(x)
	case []any:
		for i := range x {
			x[i] = convertValue(x[i])
		}
	}
	return v
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// eventTimeMillis converts an event-time expression result to epoch ms
// (eventtime.Millis, which the SDK's sources use too).
func eventTimeMillis(v any) (int64, error) { return eventtime.Millis(v) }
