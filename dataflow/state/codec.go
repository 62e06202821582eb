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
