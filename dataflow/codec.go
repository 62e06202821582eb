package dataflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Wire encoding of stream elements, used in data-plane frames.
//
// A batch is a concatenation of elements. Each element starts with a tag
// byte: the high nibble is the codec version (1), the low nibble the Kind.
// Integers are zigzag varints, lengths and counts uvarints, floats 8 bytes
// little endian. A decoder never trusts a length beyond the bytes that remain,
// so corrupt input costs at most its own size in memory.
//
//	record:    tag flags [key value] [time] [fields: n (name value)*] [origin: source topic partition offset] [source watermark]
//	watermark: tag time
//	barrier:   tag id timestamp flags(savepoint=1 stop=2 end-of-input=4)
//	idle:      tag 0|1
//	end:       tag
//
// Values start with a type byte (valNil ... valBytes below) followed by
// their payload; lists and maps carry their length first.

const codecVersion = 1

// Record flag bits.
const (
	recHasKey    = 1 << 0
	recHasTime   = 1 << 1
	recHasFields = 1 << 2
	recHasOrigin = 1 << 3
	recHasSrcWM  = 1 << 4
	recKnownBits = recHasKey | recHasTime | recHasFields | recHasOrigin | recHasSrcWM
)

// Value type bytes.
const (
	valNil byte = iota
	valFalse
	valTrue
	valInt
	valFloat
	valString
	valList
	valMap
	valBytes
)

// maxValueDepth bounds the nesting of lists and maps so a hostile frame
// cannot exhaust the decoder's stack.
const maxValueDepth = 64

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("dataflow: corrupt element encoding")

// ErrChannelBroken: an input channel between two subtasks ended before its
// end of stream, because the sending subtask or its worker failed or was
// cancelled. A task failing with it is a consequence of another failure;
// the coordinator prefers the other one as a job's cause. The worker sends
// it as FAILURE_KIND_CHANNEL_BROKEN; the text stays a contract only for
// workers older than that field.
var ErrChannelBroken = errors.New("exchange: channel broke before end of stream")

// ErrUnrecoverable marks a failure that restarting from a checkpoint would
// only repeat (a Kafka transaction the broker has fenced or aborted): the
// coordinator fails the job at once instead of asking its restart
// strategy. The worker sends it as FAILURE_KIND_UNRECOVERABLE (errors.Is);
// like ErrChannelBroken's, its text is matched only from older workers.
var ErrUnrecoverable = errors.New("unrecoverable, a restart would fail the same way")

// ErrUnencodable is wrapped when an element holds a value the codec cannot
// carry (a type outside the JSON-like set a Record allows).
var ErrUnencodable = errors.New("dataflow: value cannot be encoded")

// CorruptError tells where in a batch decoding failed and why.
type CorruptError struct {
	Offset int
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("dataflow: corrupt element encoding at offset %d: %s", e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// AppendElement appends the encoding of e to dst. On error dst is returned
// unchanged (truncated back to its original length).
func AppendElement(dst []byte, e *Element) ([]byte, error) {
	start := len(dst)
	dst = append(dst, codecVersion<<4|byte(e.Kind))
	switch e.Kind {
	case KindRecord:
		r := &e.Record
		var flags byte
		if r.Key != nil {
			flags |= recHasKey
		}
		if r.Time != NoTime {
			flags |= recHasTime
		}
		if !r.Fields.IsZero() {
			flags |= recHasFields
		}
		if r.Origin != (Origin{}) {
			flags |= recHasOrigin
		}
		if r.SourceWatermark != 0 {
			flags |= recHasSrcWM
		}
		dst = append(dst, flags)
		var err error
		if flags&recHasKey != 0 {
			if dst, err = appendValue(dst, r.Key, 0); err != nil {
				return dst[:start], fmt.Errorf("record key: %w", err)
			}
		}
		if flags&recHasTime != 0 {
			dst = binary.AppendVarint(dst, r.Time)
		}
		if flags&recHasFields != 0 {
			dst = binary.AppendUvarint(dst, uint64(r.Fields.Len()))
			for k, v := range r.Fields.All() {
				dst = appendString(dst, k)
				if dst, err = appendValue(dst, v, 1); err != nil {
					return dst[:start], fmt.Errorf("record field %q: %w", k, err)
				}
			}
		}
		if flags&recHasOrigin != 0 {
			dst = appendString(dst, r.Origin.Source)
			dst = appendString(dst, r.Origin.Topic)
			dst = binary.AppendVarint(dst, int64(r.Origin.Partition))
			dst = binary.AppendVarint(dst, r.Origin.Offset)
		}
		if flags&recHasSrcWM != 0 {
			dst = binary.AppendVarint(dst, r.SourceWatermark)
		}
	case KindWatermark:
		dst = binary.AppendVarint(dst, e.Watermark)
	case KindBarrier:
		dst = binary.AppendVarint(dst, e.Barrier.ID)
		dst = binary.AppendVarint(dst, e.Barrier.Timestamp)
		var f byte
		if e.Barrier.Savepoint {
			f |= 1
		}
		if e.Barrier.Stop {
			f |= 2
		}
		if e.Barrier.EndOfInput {
			f |= 4
		}
		dst = append(dst, f)
	case KindIdle:
		if e.Idle {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
	case KindEndOfStream:
	default:
		return dst[:start], fmt.Errorf("%w: unknown element kind %d", ErrUnencodable, e.Kind)
	}
	return dst, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxValueDepth {
		return dst, fmt.Errorf("%w: nested deeper than %d", ErrUnencodable, maxValueDepth)
	}
	switch x := v.(type) {
	case nil:
		return append(dst, valNil), nil
	case bool:
		if x {
			return append(dst, valTrue), nil
		}
		return append(dst, valFalse), nil
	case int64:
		return binary.AppendVarint(append(dst, valInt), x), nil
	case int:
		return binary.AppendVarint(append(dst, valInt), int64(x)), nil
	case int32:
		return binary.AppendVarint(append(dst, valInt), int64(x)), nil
	case int16:
		return binary.AppendVarint(append(dst, valInt), int64(x)), nil
	case int8:
		return binary.AppendVarint(append(dst, valInt), int64(x)), nil
	case uint32:
		return binary.AppendVarint(append(dst, valInt), int64(x)), nil
	case uint16:
		return binary.AppendVarint(append(dst, valInt), int64(x)), nil
	case uint8:
		return binary.AppendVarint(append(dst, valInt), int64(x)), nil
	case uint64:
		if x > math.MaxInt64 {
			return dst, fmt.Errorf("%w: uint64 %d overflows int64", ErrUnencodable, x)
		}
		return binary.AppendVarint(append(dst, valInt), int64(x)), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return dst, fmt.Errorf("%w: uint %d overflows int64", ErrUnencodable, x)
		}
		return binary.AppendVarint(append(dst, valInt), int64(x)), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(dst, valFloat), math.Float64bits(x)), nil
	case float32:
		return binary.LittleEndian.AppendUint64(append(dst, valFloat), math.Float64bits(float64(x))), nil
	case string:
		return appendString(append(dst, valString), x), nil
	case []byte:
		dst = binary.AppendUvarint(append(dst, valBytes), uint64(len(x)))
		return append(dst, x...), nil
	case []any:
		dst = binary.AppendUvarint(append(dst, valList), uint64(len(x)))
		var err error
		for _, e := range x {
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case map[string]any:
		dst = binary.AppendUvarint(append(dst, valMap), uint64(len(x)))
		var err error
		for k, e := range x {
			dst = appendString(dst, k)
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	default:
		return dst, fmt.Errorf("%w: type %T", ErrUnencodable, v)
	}
}

// DecodeElements decodes a batch and calls fn for each element in order.
// The *Element passed to fn is only valid during the call; fn copies it to
// keep it. Decoding stops at fn's first error, which is returned as is.
// Corrupt input yields an error wrapping ErrCorrupt with the offset.
func DecodeElements(src []byte, fn func(*Element) error) error {
	d := decoder{src: src}
	var e Element
	for d.off < len(d.src) {
		e = Element{}
		if err := d.element(&e); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

// AppendDecoded decodes a batch and appends its elements to dst.
func AppendDecoded(dst []Element, src []byte) ([]Element, error) {
	err := DecodeElements(src, func(e *Element) error {
		dst = append(dst, *e)
		return nil
	})
	return dst, err
}

type decoder struct {
	src []byte
	off int
	// names interns field names and origin strings, which repeat from
	// record to record in a batch.
	names map[string]string
	// shapes and scratch turn the field names of a record into a shape
	// the batch's records share.
	shapes  ShapeCache
	scratch []string
}

// Interning limits: enough for the field names of a batch, bounded so a
// hostile frame cannot grow the table without bound.
const (
	maxInternLen     = 64
	maxInternEntries = 512
)

// name reads a string that is likely to repeat within the batch.
func (d *decoder) name() (string, error) {
	b, err := d.bytes()
	if err != nil || len(b) > maxInternLen {
		return string(b), err
	}
	if s, ok := d.names[string(b)]; ok {
		return s, nil
	}
	s := string(b)
	if d.names == nil {
		d.names = make(map[string]string, 16)
	}
	if len(d.names) < maxInternEntries {
		d.names[s] = s
	}
	return s, nil
}

func (d *decoder) fail(at int, format string, args ...any) error {
	return &CorruptError{Offset: at, Reason: fmt.Sprintf(format, args...)}
}

func (d *decoder) byte() (byte, error) {
	if d.off >= len(d.src) {
		return 0, d.fail(d.off, "unexpected end of input")
	}
	b := d.src[d.off]
	d.off++
	return b, nil
}

func (d *decoder) varint() (int64, error) {
	v, n := binary.Varint(d.src[d.off:])
	if n <= 0 {
		return 0, d.fail(d.off, "bad varint")
	}
	d.off += n
	return v, nil
}

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.src[d.off:])
	if n <= 0 {
		return 0, d.fail(d.off, "bad uvarint")
	}
	d.off += n
	return v, nil
}

// count reads a length and checks that at least minSize bytes per item
// remain, so a hostile length never drives an allocation.
func (d *decoder) count(minSize int) (int, error) {
	at := d.off
	v, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if v > uint64(len(d.src)-d.off)/uint64(minSize) {
		return 0, d.fail(at, "length %d exceeds the %d bytes remaining", v, len(d.src)-d.off)
	}
	return int(v), nil
}

func (d *decoder) bytes() ([]byte, error) {
	n, err := d.count(1)
	if err != nil {
		return nil, err
	}
	b := d.src[d.off : d.off+n]
	d.off += n
	return b, nil
}

func (d *decoder) string() (string, error) {
	b, err := d.bytes()
	return string(b), err
}

func (d *decoder) element(e *Element) error {
	at := d.off
	tag, err := d.byte()
	if err != nil {
		return err
	}
	if tag>>4 != codecVersion {
		return d.fail(at, "unsupported codec version %d (tag 0x%02x)", tag>>4, tag)
	}
	e.Kind = Kind(tag & 0x0f)
	switch e.Kind {
	case KindRecord:
		return d.record(&e.Record)
	case KindWatermark:
		e.Watermark, err = d.varint()
		return err
	case KindBarrier:
		if e.Barrier.ID, err = d.varint(); err != nil {
			return err
		}
		if e.Barrier.Timestamp, err = d.varint(); err != nil {
			return err
		}
		fat := d.off
		f, err := d.byte()
		if err != nil {
			return err
		}
		if f&^7 != 0 {
			return d.fail(fat, "unknown barrier flags 0x%02x", f)
		}
		e.Barrier.Savepoint = f&1 != 0
		e.Barrier.Stop = f&2 != 0
		e.Barrier.EndOfInput = f&4 != 0
		return nil
	case KindIdle:
		bat := d.off
		b, err := d.byte()
		if err != nil {
			return err
		}
		if b > 1 {
			return d.fail(bat, "bad idle flag %d", b)
		}
		e.Idle = b == 1
		return nil
	case KindEndOfStream:
		return nil
	default:
		return d.fail(at, "unknown element kind %d", e.Kind)
	}
}

func (d *decoder) record(r *Record) error {
	fat := d.off
	flags, err := d.byte()
	if err != nil {
		return err
	}
	if flags&^recKnownBits != 0 {
		return d.fail(fat, "unknown record flags 0x%02x", flags)
	}
	if flags&recHasKey != 0 {
		if r.Key, err = d.value(0); err != nil {
			return err
		}
	}
	r.Time = NoTime
	if flags&recHasTime != 0 {
		if r.Time, err = d.varint(); err != nil {
			return err
		}
	}
	if flags&recHasFields != 0 {
		if r.Fields, err = d.fields(); err != nil {
			return err
		}
	}
	if flags&recHasOrigin != 0 {
		o := &r.Origin
		if o.Source, err = d.name(); err != nil {
			return err
		}
		if o.Topic, err = d.name(); err != nil {
			return err
		}
		pat := d.off
		p, err := d.varint()
		if err != nil {
			return err
		}
		if p < math.MinInt32 || p > math.MaxInt32 {
			return d.fail(pat, "partition %d out of range", p)
		}
		o.Partition = int32(p)
		if o.Offset, err = d.varint(); err != nil {
			return err
		}
	}
	if flags&recHasSrcWM != 0 {
		if r.SourceWatermark, err = d.varint(); err != nil {
			return err
		}
	}
	return nil
}

// fields reads a record's value: its names become a shared shape.
func (d *decoder) fields() (Fields, error) {
	n, err := d.count(2) // a name length and a value type at least
	if err != nil {
		return Fields{}, err
	}
	at := d.off
	d.scratch = d.scratch[:0]
	vals := make([]any, n)
	for i := range n {
		k, err := d.name()
		if err != nil {
			return Fields{}, err
		}
		d.scratch = append(d.scratch, k)
		if vals[i], err = d.value(1); err != nil {
			return Fields{}, err
		}
	}
	s, err := d.shapes.Shape(d.scratch)
	if err != nil {
		return Fields{}, d.fail(at, "record fields: %v", err)
	}
	return Fields{shape: s, vals: vals}, nil
}

func (d *decoder) mapValue(depth int) (map[string]any, error) {
	n, err := d.count(2) // a name length and a value type at least
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, n)
	for range n {
		k, err := d.name()
		if err != nil {
			return nil, err
		}
		if m[k], err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (d *decoder) value(depth int) (any, error) {
	at := d.off
	if depth > maxValueDepth {
		return nil, d.fail(at, "values nested deeper than %d", maxValueDepth)
	}
	t, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch t {
	case valNil:
		return nil, nil
	case valFalse:
		return false, nil
	case valTrue:
		return true, nil
	case valInt:
		return d.varint()
	case valFloat:
		if len(d.src)-d.off < 8 {
			return nil, d.fail(d.off, "unexpected end of input in float")
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(d.src[d.off:]))
		d.off += 8
		return v, nil
	case valString:
		return d.string()
	case valBytes:
		b, err := d.bytes()
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), b...), nil
	case valList:
		n, err := d.count(1)
		if err != nil {
			return nil, err
		}
		l := make([]any, n)
		for i := range l {
			if l[i], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return l, nil
	case valMap:
		return d.mapValue(depth)
	default:
		return nil, d.fail(at, "unknown value type %d", t)
	}
}
