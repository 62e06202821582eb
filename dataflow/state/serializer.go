package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Serializer turns a state value into bytes and back. The heap backend
// only uses it for snapshots; a disk backend stores the same bytes, so a
// savepoint taken with one restores into the other.
//
// Encodings must be versioned: Decode must read every encoding an earlier
// version of the same operator wrote, or return an error that says why not.
type Serializer[T any] interface {
	// Append appends the encoding of v to buf.
	Append(buf []byte, v T) ([]byte, error)
	// Decode reads one value. b is not retained.
	Decode(b []byte) (T, error)
}

// Format bytes of DefaultSerializer's encodings. Every value starts with
// one, so a reader knows how it was written even when the type changed.
const (
	fmtInt    = 1 // varint
	fmtFloat  = 2 // 8 bytes little endian
	fmtString = 3 // the bytes
	fmtBool   = 4 // one byte
	fmtJSON   = 5 // encoding/json, structs by field name
)

// DefaultSerializer returns the serializer for T: a compact binary form
// for int64, int, float64, string and bool, and JSON for everything else
// (structs by field name, maps, slices). Each value starts with a format
// byte, and a value written in another format than T's is converted
// through JSON: an int64 state read as float64 works, a struct gains a
// field (zero in old values) or loses one (dropped). A change is
// compatible exactly when the old value, as JSON, unmarshals into the new
// type (docs/sdk.md, "State evolution").
func DefaultSerializer[T any]() Serializer[T] {
	var zero T
	var s any
	switch any(zero).(type) {
	case int64:
		s = intSer[int64]{}
	case int:
		s = intSer[int]{}
	case float64:
		s = floatSer{}
	case string:
		s = stringSer{}
	case bool:
		s = boolSer{}
	default:
		return jsonSer[T]{}
	}
	return s.(Serializer[T])
}

// ErrIncompatible is wrapped by an error decoding a value written as
// another type that does not convert to the declared one.
var ErrIncompatible = errors.New("state value does not fit the declared type")

type intSer[T int64 | int] struct{}

func (intSer[T]) Append(buf []byte, v T) ([]byte, error) {
	return binary.AppendVarint(append(buf, fmtInt), int64(v)), nil
}

func (intSer[T]) Decode(b []byte) (T, error) {
	if len(b) > 0 && b[0] == fmtInt {
		v, n := binary.Varint(b[1:])
		if n <= 0 || n != len(b)-1 {
			return 0, errors.New("bad integer")
		}
		return T(v), nil
	}
	return convert[T](b)
}

type floatSer struct{}

func (floatSer) Append(buf []byte, v float64) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(append(buf, fmtFloat), math.Float64bits(v)), nil
}

func (floatSer) Decode(b []byte) (float64, error) {
	if len(b) > 0 && b[0] == fmtFloat {
		if len(b) != 9 {
			return 0, errors.New("bad float")
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b[1:])), nil
	}
	return convert[float64](b)
}

type stringSer struct{}

func (stringSer) Append(buf []byte, v string) ([]byte, error) {
	return append(append(buf, fmtString), v...), nil
}

func (stringSer) Decode(b []byte) (string, error) {
	if len(b) > 0 && b[0] == fmtString {
		return string(b[1:]), nil
	}
	return convert[string](b)
}

type boolSer struct{}

func (boolSer) Append(buf []byte, v bool) ([]byte, error) {
	c := byte(0)
	if v {
		c = 1
	}
	return append(buf, fmtBool, c), nil
}

func (boolSer) Decode(b []byte) (bool, error) {
	if len(b) > 0 && b[0] == fmtBool {
		if len(b) != 2 || b[1] > 1 {
			return false, errors.New("bad bool")
		}
		return b[1] == 1, nil
	}
	return convert[bool](b)
}

type jsonSer[T any] struct{}

func (jsonSer[T]) Append(buf []byte, v T) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode state value: %w", err)
	}
	return append(append(buf, fmtJSON), j...), nil
}

func (jsonSer[T]) Decode(b []byte) (T, error) { return convert[T](b) }

// convert decodes a value in any format into T through its JSON form.
func convert[T any](b []byte) (T, error) {
	var out T
	var j []byte
	if len(b) == 0 {
		return out, errors.New("empty state value")
	}
	switch b[0] {
	case fmtJSON:
		j = b[1:]
	case fmtInt:
		v, n := binary.Varint(b[1:])
		if n <= 0 || n != len(b)-1 {
			return out, errors.New("bad integer")
		}
		j, _ = json.Marshal(v)
	case fmtFloat:
		if len(b) != 9 {
			return out, errors.New("bad float")
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(b[1:]))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return out, fmt.Errorf("%w: %v has no JSON form", ErrIncompatible, f)
		}
		j, _ = json.Marshal(f)
	case fmtString:
		j, _ = json.Marshal(string(b[1:]))
	case fmtBool:
		if len(b) != 2 || b[1] > 1 {
			return out, errors.New("bad bool")
		}
		j, _ = json.Marshal(b[1] == 1)
	default:
		return out, fmt.Errorf("unknown state value format %d", b[0])
	}
	if err := json.Unmarshal(j, &out); err != nil {
		return out, fmt.Errorf("%w: %s as %T: %v", ErrIncompatible, truncate(j), out, err)
	}
	return out, nil
}

func truncate(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}
