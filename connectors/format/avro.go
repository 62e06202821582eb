package format

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/weir-stream/weir/dataflow"
)

// The Avro codec parses schemas with hamba/avro and compiles them into a
// tree of nodes that decodes the binary encoding straight into record
// fields (and encodes fields back), without building a generic map first
// and without reflection per value.
//
// Avro types become record values as follows: null nil; boolean bool;
// int and long int64 (logical dates and timestamps stay numbers: days or
// epoch milli/microseconds); float and double float64; string, enum
// (its symbol) and uuid string; bytes and fixed []byte; decimal a string
// holding the exact decimal number; array []any; map map[string]any;
// a nested record map[string]any; a union the value of its branch.

type avroKind uint8

const (
	avNull avroKind = iota
	avBool
	avInt
	avLong
	avFloat
	avDouble
	avBytes
	avString
	avRecord
	avEnum
	avArray
	avMap
	avUnion
	avFixed
	avDecimalBytes
	avDecimalFixed
)

// maxAvroDepth bounds nesting while decoding or encoding, so a
// recursive schema cannot be made to exhaust the stack.
const maxAvroDepth = 200

type avroNode struct {
	kind     avroKind
	name     string // named types, for messages
	fields   []avroField
	shape    *dataflow.Shape // record
	items    *avroNode       // array items, map values
	branches []*avroNode     // union
	symbols  []string        // enum
	size     int             // fixed
	scale    int             // decimal
}

type avroField struct {
	name   string
	node   *avroNode
	def    any
	hasDef bool
}

// avroCodec decodes and encodes values of one Avro schema.
type avroCodec struct {
	root *avroNode
	// top is the root record's shape; nil when the schema is not a
	// record, whose value is then the record's field "value".
	top *dataflow.Shape
}

var valueShape = dataflow.MustShape("value")

// newAvroCodec parses an Avro schema. A fresh cache per schema keeps the
// named types of one schema (or one version of it) from leaking into
// another: two versions of a record share its name.
func newAvroCodec(text string) (*avroCodec, error) {
	return newAvroCodecCache(text, &avro.SchemaCache{})
}

// newAvroCodecCache parses text with the named types in cache (those of
// the schemas it references).
func newAvroCodecCache(text string, cache *avro.SchemaCache) (*avroCodec, error) {
	s, err := avro.ParseWithCache(text, "", cache)
	if err != nil {
		return nil, fmt.Errorf("%w: avro: %v", ErrSchema, err)
	}
	root, err := compileAvro(s, map[string]*avroNode{})
	if err != nil {
		return nil, fmt.Errorf("%w: avro: %v", ErrSchema, err)
	}
	c := &avroCodec{root: root}
	if root.kind == avRecord {
		c.top = root.shape
	}
	return c, nil
}

func compileAvro(s avro.Schema, named map[string]*avroNode) (*avroNode, error) {
	switch s := s.(type) {
	case *avro.NullSchema:
		return &avroNode{kind: avNull}, nil
	case *avro.PrimitiveSchema:
		if l, ok := s.Logical().(*avro.DecimalLogicalSchema); ok && s.Type() == avro.Bytes {
			return &avroNode{kind: avDecimalBytes, scale: l.Scale()}, nil
		}
		switch s.Type() {
		case avro.Null:
			return &avroNode{kind: avNull}, nil
		case avro.Boolean:
			return &avroNode{kind: avBool}, nil
		case avro.Int:
			return &avroNode{kind: avInt}, nil
		case avro.Long:
			return &avroNode{kind: avLong}, nil
		case avro.Float:
			return &avroNode{kind: avFloat}, nil
		case avro.Double:
			return &avroNode{kind: avDouble}, nil
		case avro.Bytes:
			return &avroNode{kind: avBytes}, nil
		case avro.String:
			return &avroNode{kind: avString}, nil
		}
		return nil, fmt.Errorf("unsupported primitive type %s", s.Type())
	case *avro.RecordSchema:
		n := &avroNode{kind: avRecord, name: s.FullName()}
		named[s.FullName()] = n
		names := make([]string, 0, len(s.Fields()))
		for _, f := range s.Fields() {
			fn, err := compileAvro(f.Type(), named)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", s.FullName(), f.Name(), err)
			}
			af := avroField{name: f.Name(), node: fn, hasDef: f.HasDefault()}
			if af.hasDef {
				af.def = f.Default()
			}
			n.fields = append(n.fields, af)
			names = append(names, f.Name())
		}
		shape, err := dataflow.NewShape(names...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.FullName(), err)
		}
		n.shape = shape
		return n, nil
	case *avro.RefSchema:
		if n, ok := named[s.Schema().FullName()]; ok {
			return n, nil
		}
		return compileAvro(s.Schema(), named)
	case *avro.EnumSchema:
		return &avroNode{kind: avEnum, name: s.FullName(), symbols: slices.Clone(s.Symbols())}, nil
	case *avro.FixedSchema:
		n := &avroNode{kind: avFixed, name: s.FullName(), size: s.Size()}
		if l, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			n.kind, n.scale = avDecimalFixed, l.Scale()
		}
		named[s.FullName()] = n
		return n, nil
	case *avro.ArraySchema:
		it, err := compileAvro(s.Items(), named)
		if err != nil {
			return nil, err
		}
		return &avroNode{kind: avArray, items: it}, nil
	case *avro.MapSchema:
		v, err := compileAvro(s.Values(), named)
		if err != nil {
			return nil, err
		}
		return &avroNode{kind: avMap, items: v}, nil
	case *avro.UnionSchema:
		n := &avroNode{kind: avUnion}
		for _, t := range s.Types() {
			b, err := compileAvro(t, named)
			if err != nil {
				return nil, err
			}
			n.branches = append(n.branches, b)
		}
		return n, nil
	}
	return nil, fmt.Errorf("unsupported schema %T", s)
}

// avroReader reads the binary encoding.
type avroReader struct {
	b []byte
	i int
}

func (r *avroReader) fail(format string, args ...any) error {
	return fmt.Errorf("%w: avro: at byte %d: %s", ErrMalformed, r.i, fmt.Sprintf(format, args...))
}

func (r *avroReader) long() (int64, error) {
	v, n := binary.Varint(r.b[r.i:])
	if n <= 0 {
		if n == 0 {
			return 0, r.fail("truncated")
		}
		return 0, r.fail("varint overflows 64 bits")
	}
	r.i += n
	return v, nil
}

func (r *avroReader) length() (int, error) {
	n, err := r.long()
	if err != nil {
		return 0, err
	}
	if n < 0 || n > int64(len(r.b)-r.i) {
		return 0, r.fail("length %d beyond the %d bytes left", n, len(r.b)-r.i)
	}
	return int(n), nil
}

func (r *avroReader) take(n int) ([]byte, error) {
	if n > len(r.b)-r.i {
		return nil, r.fail("truncated: want %d bytes, %d left", n, len(r.b)-r.i)
	}
	b := r.b[r.i : r.i+n]
	r.i += n
	return b, nil
}

// blockCount reads an array or map block's item count. A negative count
// is followed by the block's size in bytes, which is not needed here.
func (r *avroReader) blockCount(zeroSize bool) (int, error) {
	n, err := r.long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, r.fail("block count overflows")
		}
		n = -n
		if _, err := r.long(); err != nil {
			return 0, err
		}
	}
	// Every item takes a byte at least unless its type takes none
	// (null); bound those by a generous constant instead.
	if !zeroSize && n > int64(len(r.b)-r.i) || zeroSize && n > 1<<20 {
		return 0, r.fail("block of %d items beyond the %d bytes left", n, len(r.b)-r.i)
	}
	return int(n), nil
}

// decode decodes a whole payload into record fields.
func (c *avroCodec) decode(payload []byte) (dataflow.Fields, error) {
	r := &avroReader{b: payload}
	var f dataflow.Fields
	if c.top != nil {
		vals := make([]any, len(c.root.fields))
		for i, fl := range c.root.fields {
			v, err := r.value(fl.node, 1)
			if err != nil {
				return dataflow.Fields{}, fmt.Errorf("field %q: %w", fl.name, err)
			}
			vals[i] = v
		}
		f = dataflow.NewFields(c.top, vals)
	} else {
		v, err := r.value(c.root, 1)
		if err != nil {
			return dataflow.Fields{}, err
		}
		f = dataflow.NewFields(valueShape, []any{v})
	}
	if r.i != len(r.b) {
		return dataflow.Fields{}, r.fail("%d bytes after the value", len(r.b)-r.i)
	}
	return f, nil
}

func (r *avroReader) value(n *avroNode, depth int) (any, error) {
	if depth > maxAvroDepth {
		return nil, r.fail("nested deeper than %d", maxAvroDepth)
	}
	switch n.kind {
	case avNull:
		return nil, nil
	case avBool:
		b, err := r.take(1)
		if err != nil {
			return nil, err
		}
		if b[0] > 1 {
			return nil, r.fail("boolean byte %d", b[0])
		}
		return b[0] == 1, nil
	case avInt:
		v, err := r.long()
		if err != nil {
			return nil, err
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return nil, r.fail("int %d out of 32-bit range", v)
		}
		return v, nil
	case avLong:
		return r.long()
	case avFloat:
		b, err := r.take(4)
		if err != nil {
			return nil, err
		}
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
	case avDouble:
		b, err := r.take(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case avString:
		l, err := r.length()
		if err != nil {
			return nil, err
		}
		b, _ := r.take(l)
		return string(b), nil
	case avBytes:
		l, err := r.length()
		if err != nil {
			return nil, err
		}
		b, _ := r.take(l)
		return slices.Clone(b), nil
	case avFixed:
		b, err := r.take(n.size)
		if err != nil {
			return nil, err
		}
		return slices.Clone(b), nil
	case avDecimalBytes, avDecimalFixed:
		var b []byte
		var err error
		if n.kind == avDecimalFixed {
			b, err = r.take(n.size)
		} else {
			var l int
			if l, err = r.length(); err == nil {
				b, err = r.take(l)
			}
		}
		if err != nil {
			return nil, err
		}
		return decimalString(b, n.scale), nil
	case avEnum:
		i, err := r.long()
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(n.symbols)) {
			return nil, r.fail("enum %s: index %d of %d symbols", n.name, i, len(n.symbols))
		}
		return n.symbols[i], nil
	case avUnion:
		i, err := r.long()
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return nil, r.fail("union branch %d of %d", i, len(n.branches))
		}
		return r.value(n.branches[i], depth+1)
	case avRecord:
		m := make(map[string]any, len(n.fields))
		for _, fl := range n.fields {
			v, err := r.value(fl.node, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", n.name, fl.name, err)
			}
			m[fl.name] = v
		}
		return m, nil
	case avArray:
		out := []any{}
		zero := n.items.kind == avNull
		for {
			cnt, err := r.blockCount(zero)
			if err != nil {
				return nil, err
			}
			if cnt == 0 {
				return out, nil
			}
			if len(out)+cnt > 1<<24 {
				return nil, r.fail("array of more than %d items", 1<<24)
			}
			out = slices.Grow(out, cnt)
			for range cnt {
				v, err := r.value(n.items, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
		}
	case avMap:
		out := map[string]any{}
		for {
			cnt, err := r.blockCount(false) // a key takes a byte at least
			if err != nil {
				return nil, err
			}
			if cnt == 0 {
				return out, nil
			}
			for range cnt {
				l, err := r.length()
				if err != nil {
					return nil, err
				}
				k, _ := r.take(l)
				v, err := r.value(n.items, depth+1)
				if err != nil {
					return nil, err
				}
				out[string(k)] = v
			}
		}
	}
	return nil, r.fail("unknown node kind %d", n.kind)
}

// decimalString renders a two's-complement big-endian unscaled value
// with scale digits after the point, exactly.
func decimalString(b []byte, scale int) string {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	if scale <= 0 {
		return v.String()
	}
	neg := v.Sign() < 0
	digits := new(big.Int).Abs(v).String()
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	s := digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}

// decimalBytes is decimalString's inverse: v (a string, integer or float)
// scaled to an integer, as two's-complement big-endian bytes.
func decimalBytes(v any, scale int) ([]byte, error) {
	var r big.Rat
	switch x := v.(type) {
	case string:
		if _, ok := r.SetString(x); !ok {
			return nil, fmt.Errorf("%q is not a decimal number", x)
		}
	case int64:
		r.SetInt64(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v is not a decimal number", x)
		}
		r.SetFloat64(x)
	default:
		return nil, fmt.Errorf("want a decimal as a string or number, got %T", v)
	}
	r.Mul(&r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	if !r.IsInt() {
		return nil, fmt.Errorf("%v has more than %d decimal places", v, scale)
	}
	i := r.Num()
	if i.Sign() >= 0 {
		b := i.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b, nil
	}
	// Two's complement of a negative number in the fewest bytes.
	n := (i.BitLen() + 8) / 8
	m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(n)*8), i)
	b := m.Bytes()
	for len(b) < n {
		b = append([]byte{0xff}, b...)
	}
	return b, nil
}

// encode appends the binary encoding of f.
func (c *avroCodec) encode(dst []byte, f dataflow.Fields) ([]byte, error) {
	if c.top == nil {
		return appendAvro(dst, c.root, f.Get("value"), 1)
	}
	for _, fl := range c.root.fields {
		v, ok := f.Lookup(fl.name)
		var err error
		if dst, err = appendAvroField(dst, fl, v, ok); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func appendAvroField(dst []byte, fl avroField, v any, ok bool) ([]byte, error) {
	if !ok {
		switch {
		case fl.hasDef:
			v = fl.def
		case fl.node.kind == avNull || fl.node.kind == avUnion && slices.ContainsFunc(fl.node.branches, func(b *avroNode) bool { return b.kind == avNull }):
			v = nil
		default:
			return nil, fmt.Errorf("field %q: missing, and the schema gives it no default", fl.name)
		}
	}
	out, err := appendAvro(dst, fl.node, v, 1)
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", fl.name, err)
	}
	return out, nil
}

// integral converts a numeric record value to int64, if it is a whole
// number.
func integral(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), true
		}
	case float32:
		return integral(float64(x))
	}
	return 0, false
}

func floating(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	}
	return 0, false
}

func appendAvro(dst []byte, n *avroNode, v any, depth int) ([]byte, error) {
	if depth > maxAvroDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxAvroDepth)
	}
	switch n.kind {
	case avNull:
		if v != nil {
			return nil, fmt.Errorf("want null, got %T", v)
		}
		return dst, nil
	case avBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want a boolean, got %T", v)
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case avInt, avLong:
		i, ok := integral(v)
		if !ok {
			return nil, fmt.Errorf("want an integer, got %T %v", v, v)
		}
		if n.kind == avInt && (i < math.MinInt32 || i > math.MaxInt32) {
			return nil, fmt.Errorf("%d is out of the 32-bit range of an Avro int", i)
		}
		return binary.AppendVarint(dst, i), nil
	case avFloat:
		x, ok := floating(v)
		if !ok {
			return nil, fmt.Errorf("want a number, got %T", v)
		}
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(x))), nil
	case avDouble:
		x, ok := floating(v)
		if !ok {
			return nil, fmt.Errorf("want a number, got %T", v)
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(x)), nil
	case avString, avBytes:
		switch x := v.(type) {
		case string:
			dst = binary.AppendVarint(dst, int64(len(x)))
			return append(dst, x...), nil
		case []byte:
			dst = binary.AppendVarint(dst, int64(len(x)))
			return append(dst, x...), nil
		}
		return nil, fmt.Errorf("want a string, got %T", v)
	case avFixed:
		var b []byte
		switch x := v.(type) {
		case string:
			b = []byte(x)
		case []byte:
			b = x
		default:
			return nil, fmt.Errorf("want %d bytes, got %T", n.size, v)
		}
		if len(b) != n.size {
			return nil, fmt.Errorf("fixed %s: want %d bytes, got %d", n.name, n.size, len(b))
		}
		return append(dst, b...), nil
	case avDecimalBytes, avDecimalFixed:
		b, err := decimalBytes(v, n.scale)
		if err != nil {
			return nil, err
		}
		if n.kind == avDecimalBytes {
			dst = binary.AppendVarint(dst, int64(len(b)))
			return append(dst, b...), nil
		}
		if len(b) > n.size {
			return nil, fmt.Errorf("decimal %v does not fit %d bytes", v, n.size)
		}
		pad := byte(0)
		if b[0]&0x80 != 0 {
			pad = 0xff
		}
		for range n.size - len(b) {
			dst = append(dst, pad)
		}
		return append(dst, b...), nil
	case avEnum:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("enum %s: want a symbol, got %T", n.name, v)
		}
		i := slices.Index(n.symbols, s)
		if i < 0 {
			return nil, fmt.Errorf("enum %s: %q is not one of its symbols", n.name, s)
		}
		return binary.AppendVarint(dst, int64(i)), nil
	case avArray:
		l, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("want a list, got %T", v)
		}
		if len(l) > 0 {
			dst = binary.AppendVarint(dst, int64(len(l)))
			for i, x := range l {
				var err error
				if dst, err = appendAvro(dst, n.items, x, depth+1); err != nil {
					return nil, fmt.Errorf("item %d: %w", i, err)
				}
			}
		}
		return append(dst, 0), nil
	case avMap:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("want a map, got %T", v)
		}
		if len(m) > 0 {
			dst = binary.AppendVarint(dst, int64(len(m)))
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys) // same fields, same bytes
			for _, k := range keys {
				dst = binary.AppendVarint(dst, int64(len(k)))
				dst = append(dst, k...)
				var err error
				if dst, err = appendAvro(dst, n.items, m[k], depth+1); err != nil {
					return nil, fmt.Errorf("key %q: %w", k, err)
				}
			}
		}
		return append(dst, 0), nil
	case avRecord:
		var get func(string) (any, bool)
		switch x := v.(type) {
		case map[string]any:
			get = func(k string) (any, bool) { y, ok := x[k]; return y, ok }
		case dataflow.Fields:
			get = x.Lookup
		default:
			return nil, fmt.Errorf("record %s: want a map, got %T", n.name, v)
		}
		for _, fl := range n.fields {
			x, ok := get(fl.name)
			var err error
			if dst, err = appendAvroField(dst, fl, x, ok); err != nil {
				return nil, fmt.Errorf("%s.%w", n.name, err)
			}
		}
		return dst, nil
	case avUnion:
		// The branch that matches the value's type; failing that, the
		// first that takes it (an int64 for a double, say).
		if i := matchBranch(n.branches, v); i >= 0 {
			dst = binary.AppendVarint(dst, int64(i))
			return appendAvro(dst, n.branches[i], v, depth+1)
		}
		for i, b := range n.branches {
			out, err := appendAvro(binary.AppendVarint(dst, int64(i)), b, v, depth+1)
			if err == nil {
				return out, nil
			}
		}
		return nil, fmt.Errorf("no branch of the union takes %T %v", v, v)
	}
	return nil, fmt.Errorf("unknown node kind %d", n.kind)
}

func matchBranch(bs []*avroNode, v any) int {
	var want []avroKind
	switch v.(type) {
	case nil:
		want = []avroKind{avNull}
	case bool:
		want = []avroKind{avBool}
	case int64, int, int32:
		want = []avroKind{avLong, avInt}
	case float64, float32:
		want = []avroKind{avDouble, avFloat}
	case string:
		want = []avroKind{avString}
	case []byte:
		want = []avroKind{avBytes}
	case []any:
		want = []avroKind{avArray}
	case map[string]any:
		want = []avroKind{avRecord, avMap}
	}
	for _, k := range want {
		for i, b := range bs {
			if b.kind == k {
				return i
			}
		}
	}
	return -1
}
