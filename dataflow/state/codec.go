package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Key tags in the snapshot encoding.
const (
	tagNull = iota
	tagFalse
	tagTrue
	tagInt
	tagFloat
	tagString
)

func appendKey(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, tagNull)
	case bool:
		if x {
			return append(buf, tagTrue)
		}
		return append(buf, tagFalse)
	case int64:
		buf = append(buf, tagInt)
		return binary.AppendVarint(buf, x)
	case float64:
		buf = append(buf, tagFloat)
		return binary.LittleEndian.AppendUint64(buf, math.Float64bits(x))
	case string:
		buf = append(buf, tagString)
		return appendBytes(buf, []byte(x))
	}
	// Keys are normalized on the way in; this is unreachable.
	return append(buf, tagNull)
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// reader decodes with bounds checks; the first error sticks and every
// later read returns zero values.
type reader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *reader) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *reader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *reader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items each at least minSize bytes long, which
// cannot exceed what is left.
func (d *reader) count(minSize int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(len(d.b)/max(minSize, 1)) {
		d.fail(fmt.Errorf("count %d exceeds the data", v))
		return 0
	}
	return int(v)
}

func (d *reader) byte() byte {
	if len(d.b) < 1 {
		d.fail(errTruncated)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *reader) next(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail(errTruncated)
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *reader) bytes() []byte { return d.next(d.count(1)) }

func (d *reader) string() string { return string(d.bytes()) }

func (d *reader) key() any {
	switch t := d.byte(); t {
	case tagNull:
		return nil
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagInt:
		return d.varint()
	case tagFloat:
		p := d.next(8)
		if p == nil {
			return nil
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(p))
		if math.IsNaN(f) {
			d.fail(errors.New("NaN key"))
		}
		return f
	case tagString:
		return d.string()
	default:
		if d.err == nil {
			d.fail(fmt.Errorf("unknown key tag %d", t))
		}
		return nil
	}
}

// AppendKey appends a normalized key (or any value of the same types:
// null, bool, int64, float64, string) in the snapshot's tagged encoding,
// which Reader.Key reads back. Operators use it for values inside their
// own serializers, so weir has one such encoding.
func AppendKey(buf []byte, v any) []byte { return appendKey(buf, v) }

// AppendFloat appends f as 8 bytes little endian (Reader.Float).
func AppendFloat(buf []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(buf, math.Float64bits(f))
}

// Reader decodes the encodings of this package with bounds checks, for
// operators' serializers and their own snapshot headers: the first error
// sticks, and every later read returns zero values, so a caller checks Err
// once after a run of reads.
type Reader struct{ r reader }

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{reader{b: b}} }

// Err is the first error met, nil if none.
func (d *Reader) Err() error { return d.r.err }

// Fail records err (unless an error is recorded already) and stops reading.
func (d *Reader) Fail(err error) { d.r.fail(err) }

// Len is the number of bytes left.
func (d *Reader) Len() int { return len(d.r.b) }

// Rest returns the bytes left and consumes them.
func (d *Reader) Rest() []byte {
	b := d.r.b
	d.r.b = nil
	return b
}

// Uvarint reads an unsigned varint.
func (d *Reader) Uvarint() uint64 { return d.r.uvarint() }

// Varint reads a zig-zag varint.
func (d *Reader) Varint() int64 { return d.r.varint() }

// Count reads a number of items each at least minSize bytes long; a count
// that cannot fit in what is left is an error, so a corrupt count never
// makes the caller allocate.
func (d *Reader) Count(minSize int) int { return d.r.count(minSize) }

// Byte reads one byte.
func (d *Reader) Byte() byte { return d.r.byte() }

// Next reads n bytes.
func (d *Reader) Next(n int) []byte { return d.r.next(n) }

// Float reads 8 bytes little endian (AppendFloat).
func (d *Reader) Float() float64 {
	p := d.r.next(8)
	if p == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(p))
}

// Key reads a value written by AppendKey; NaN is an error.
func (d *Reader) Key() any { return d.r.key() }
