package format

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/weir-stream/weir/dataflow"
)

// The Protobuf codec compiles the registry's .proto text with protocompile
// and decodes with dynamicpb. Protobuf values become record values as
// follows: integers int64 (a uint64 above the int64 range float64);
// float and double float64; bool; string; bytes []byte; an enum its
// value's name (its number when the schema has no name for it); a message
// map[string]any; a repeated field []any; a map field map[string]any
// (keys as text). Fields are named as in the .proto file and come in
// declaration order. A field without presence that is not set has its
// default (0, "", false), as in Protobuf; a message field or an optional
// or oneof field that is not set is null.

// protoFile is the name the schema text goes by in the compiler.
const protoFile = "schema.proto"

// protoSchema is one compiled .proto file.
type protoSchema struct {
	file protoreflect.FileDescriptor
	// byIndex caches a codec per message-index path.
	byIndex map[string]*protoCodec
}

// protoCodec decodes and encodes one message type.
type protoCodec struct {
	md    protoreflect.MessageDescriptor
	shape *dataflow.Shape
	index []int
}

// newProtoSchema compiles schema text; deps holds the text of the files it
// imports (references), by import path.
func newProtoSchema(text string, deps map[string]string) (*protoSchema, error) {
	srcs := map[string]string{protoFile: text}
	for k, v := range deps {
		srcs[k] = v
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(srcs),
		}),
	}
	files, err := c.Compile(context.Background(), protoFile)
	if err != nil {
		return nil, fmt.Errorf("%w: protobuf: %v", ErrSchema, err)
	}
	if files[0].Messages().Len() == 0 {
		return nil, fmt.Errorf("%w: protobuf: the schema has no message", ErrSchema)
	}
	return &protoSchema{file: files[0], byIndex: map[string]*protoCodec{}}, nil
}

// codec returns the codec of the message at a message-index path. Not
// safe for concurrent use (the Decoder locks around it).
func (p *protoSchema) codec(index []int) (*protoCodec, error) {
	key := fmt.Sprint(index)
	if c, ok := p.byIndex[key]; ok {
		return c, nil
	}
	msgs := p.file.Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range index {
		if i >= msgs.Len() {
			return nil, fmt.Errorf("%w: message index %v: no message %d in the schema", ErrMalformed, index, i)
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	c, err := newProtoCodec(md, index)
	if err != nil {
		return nil, err
	}
	p.byIndex[key] = c
	return c, nil
}

// message finds a message type by full or short name ("" the first) and
// its index path.
func (p *protoSchema) message(name string) (*protoCodec, error) {
	if name == "" {
		return p.codec([]int{0})
	}
	var find func(msgs protoreflect.MessageDescriptors, path []int) []int
	find = func(msgs protoreflect.MessageDescriptors, path []int) []int {
		for i := range msgs.Len() {
			md := msgs.Get(i)
			at := append(append([]int(nil), path...), i)
			if string(md.FullName()) == name || string(md.Name()) == name {
				return at
			}
			if r := find(md.Messages(), at); r != nil {
				return r
			}
		}
		return nil
	}
	idx := find(p.file.Messages(), nil)
	if idx == nil {
		return nil, fmt.Errorf("%w: protobuf: no message %q in the schema", ErrSchema, name)
	}
	return p.codec(idx)
}

func newProtoCodec(md protoreflect.MessageDescriptor, index []int) (*protoCodec, error) {
	fs := md.Fields()
	names := make([]string, fs.Len())
	for i := range fs.Len() {
		names[i] = string(fs.Get(i).Name())
	}
	shape, err := dataflow.NewShape(names...)
	if err != nil {
		return nil, fmt.Errorf("%w: protobuf: %s: %v", ErrSchema, md.FullName(), err)
	}
	return &protoCodec{md: md, shape: shape, index: index}, nil
}

func (c *protoCodec) decode(payload []byte) (f dataflow.Fields, err error) {
	// protobuf-go's reflective decoder panics on some malformed map
	// entries (a key of the wrong wire type; found by FuzzProtobufDecode):
	// that is the value's fault, not the task's.
	defer func() {
		if r := recover(); r != nil {
			f, err = dataflow.Fields{}, fmt.Errorf("%w: protobuf %s: %v", ErrMalformed, c.md.FullName(), r)
		}
	}()
	m := dynamicpb.NewMessage(c.md)
	if err := (proto.UnmarshalOptions{RecursionLimit: maxAvroDepth}).Unmarshal(payload, m); err != nil {
		return dataflow.Fields{}, fmt.Errorf("%w: protobuf %s: %v", ErrMalformed, c.md.FullName(), err)
	}
	fs := c.md.Fields()
	vals := make([]any, fs.Len())
	for i := range fs.Len() {
		vals[i] = protoField(m, fs.Get(i))
	}
	return dataflow.NewFields(c.shape, vals), nil
}

func protoField(m protoreflect.Message, fd protoreflect.FieldDescriptor) any {
	switch {
	case fd.IsList():
		l := m.Get(fd).List()
		out := make([]any, l.Len())
		for i := range l.Len() {
			out[i] = protoValue(fd, l.Get(i))
		}
		return out
	case fd.IsMap():
		mp := m.Get(fd).Map()
		out := make(map[string]any, mp.Len())
		vd := fd.MapValue()
		mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			out[k.String()] = protoValue(vd, v)
			return true
		})
		return out
	case fd.HasPresence() && !m.Has(fd):
		return nil
	}
	return protoValue(fd, m.Get(fd))
}

func protoValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return v.Bool()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		u := v.Uint()
		if u > math.MaxInt64 {
			return float64(u)
		}
		return int64(u)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float()
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return append([]byte(nil), v.Bytes()...)
	case protoreflect.EnumKind:
		n := v.Enum()
		if ev := fd.Enum().Values().ByNumber(n); ev != nil {
			return string(ev.Name())
		}
		return int64(n)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		msg := v.Message()
		fs := msg.Descriptor().Fields()
		out := make(map[string]any, fs.Len())
		for i := range fs.Len() {
			f := fs.Get(i)
			out[string(f.Name())] = protoField(msg, f)
		}
		return out
	}
	return nil
}

// encode appends the Protobuf encoding of f as the codec's message.
func (c *protoCodec) encode(dst []byte, f dataflow.Fields) ([]byte, error) {
	m := dynamicpb.NewMessage(c.md)
	if err := setProto(m, f.Lookup, 1); err != nil {
		return nil, err
	}
	return proto.MarshalOptions{Deterministic: true}.MarshalAppend(dst, m)
}

func setProto(m protoreflect.Message, get func(string) (any, bool), depth int) error {
	if depth > maxAvroDepth {
		return fmt.Errorf("nested deeper than %d", maxAvroDepth)
	}
	fs := m.Descriptor().Fields()
	for i := range fs.Len() {
		fd := fs.Get(i)
		v, ok := get(string(fd.Name()))
		if !ok || v == nil {
			continue
		}
		if err := setProtoField(m, fd, v, depth); err != nil {
			return fmt.Errorf("field %q: %w", fd.Name(), err)
		}
	}
	return nil
}

func setProtoField(m protoreflect.Message, fd protoreflect.FieldDescriptor, v any, depth int) error {
	switch {
	case fd.IsList():
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list, got %T", v)
		}
		pl := m.Mutable(fd).List()
		for i, x := range l {
			pv, err := toProto(pl.NewElement, fd, x, depth)
			if err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
			pl.Append(pv)
		}
		return nil
	case fd.IsMap():
		mp, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a map, got %T", v)
		}
		pm := m.Mutable(fd).Map()
		for k, x := range mp {
			key, err := protoMapKey(fd.MapKey(), k)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			pv, err := toProto(pm.NewValue, fd.MapValue(), x, depth)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			pm.Set(key, pv)
		}
		return nil
	}
	pv, err := toProto(func() protoreflect.Value { return m.NewField(fd) }, fd, v, depth)
	if err != nil {
		return err
	}
	m.Set(fd, pv)
	return nil
}

func protoMapKey(fd protoreflect.FieldDescriptor, k string) (protoreflect.MapKey, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(k).MapKey(), nil
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(k)
		return protoreflect.ValueOfBool(b).MapKey(), err
	}
	v, err := toProto(nil, fd, k, 0)
	if err != nil {
		return protoreflect.MapKey{}, err
	}
	return v.MapKey(), nil
}

// toProto converts a record value to a field's type. newMsg makes an
// empty message of the field's type (for message fields).
func toProto(newMsg func() protoreflect.Value, fd protoreflect.FieldDescriptor, v any, depth int) (protoreflect.Value, error) {
	num := func() (int64, error) {
		if s, ok := v.(string); ok { // map keys arrive as text
			return strconv.ParseInt(s, 10, 64)
		}
		i, ok := integral(v)
		if !ok {
			return 0, fmt.Errorf("want an integer, got %T %v", v, v)
		}
		return i, nil
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		b, ok := v.(bool)
		if !ok {
			return protoreflect.Value{}, fmt.Errorf("want a boolean, got %T", v)
		}
		return protoreflect.ValueOfBool(b), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		i, err := num()
		if err == nil && (i < math.MinInt32 || i > math.MaxInt32) {
			err = fmt.Errorf("%d is out of the 32-bit range", i)
		}
		return protoreflect.ValueOfInt32(int32(i)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		i, err := num()
		return protoreflect.ValueOfInt64(i), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		i, err := num()
		if err == nil && (i < 0 || i > math.MaxUint32) {
			err = fmt.Errorf("%d is out of the unsigned 32-bit range", i)
		}
		return protoreflect.ValueOfUint32(uint32(i)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if f, ok := v.(float64); ok && f >= math.MaxInt64 && f < math.MaxUint64 {
			return protoreflect.ValueOfUint64(uint64(f)), nil
		}
		i, err := num()
		if err == nil && i < 0 {
			err = fmt.Errorf("%d is negative", i)
		}
		return protoreflect.ValueOfUint64(uint64(i)), err
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f, ok := floating(v)
		if !ok {
			return protoreflect.Value{}, fmt.Errorf("want a number, got %T", v)
		}
		if fd.Kind() == protoreflect.FloatKind {
			return protoreflect.ValueOfFloat32(float32(f)), nil
		}
		return protoreflect.ValueOfFloat64(f), nil
	case protoreflect.StringKind:
		switch x := v.(type) {
		case string:
			return protoreflect.ValueOfString(x), nil
		case []byte:
			return protoreflect.ValueOfString(string(x)), nil
		}
		return protoreflect.Value{}, fmt.Errorf("want a string, got %T", v)
	case protoreflect.BytesKind:
		switch x := v.(type) {
		case string:
			return protoreflect.ValueOfBytes([]byte(x)), nil
		case []byte:
			return protoreflect.ValueOfBytes(x), nil
		}
		return protoreflect.Value{}, fmt.Errorf("want bytes, got %T", v)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		if s, ok := v.(string); ok {
			ev := vals.ByName(protoreflect.Name(s))
			if ev == nil {
				return protoreflect.Value{}, fmt.Errorf("%q is not a value of enum %s", s, fd.Enum().FullName())
			}
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		i, err := num()
		if err == nil && (i < math.MinInt32 || i > math.MaxInt32) {
			err = fmt.Errorf("enum number %d out of range", i)
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(i)), err
	case protoreflect.MessageKind, protoreflect.GroupKind:
		mv, ok := v.(map[string]any)
		if !ok {
			return protoreflect.Value{}, fmt.Errorf("message %s: want a map, got %T", fd.Message().FullName(), v)
		}
		pv := newMsg()
		if err := setProto(pv.Message(), func(k string) (any, bool) { x, ok := mv[k]; return x, ok }, depth+1); err != nil {
			return protoreflect.Value{}, err
		}
		return pv, nil
	}
	return protoreflect.Value{}, fmt.Errorf("unsupported field kind %s", fd.Kind())
}
