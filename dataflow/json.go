package dataflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends f as one JSON object, fields in order, with the
// encoding of encoding/json without HTML escaping. The zero Fields is {}.
// A value JSON cannot carry (NaN, an infinity, a type outside the record
// value types) is an error naming the field, and dst is returned as it was.
//
// Plain strings, integers, booleans and null, the bulk of most records, are
// written directly; other values go through encoding/json.
func AppendJSON(dst []byte, f Fields) ([]byte, error) {
	start := len(dst)
	dst = append(dst, '{')
	for i, v := range f.vals {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, f.shape.names[i])
		dst = append(dst, ':')
		var err error
		if dst, err = appendJSONValue(dst, v); err != nil {
			return dst[:start], fmt.Errorf("field %q: %w", f.shape.names[i], err)
		}
	}
	return append(dst, '}'), nil
}

// MarshalJSON encodes f with AppendJSON, so encoding/json writes Fields as
// an object in field order.
func (f Fields) MarshalJSON() ([]byte, error) { return AppendJSON(nil, f) }

func appendJSONValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case string:
		return appendJSONString(dst, x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return dst, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(x, 'g', -1, 64))
		}
		return appendJSONFloat(dst, x), nil
	}
	return appendJSONSlow(dst, v)
}

// appendJSONFloat formats like encoding/json: ES6 number formatting.
func appendJSONFloat(dst []byte, x float64) []byte {
	format := byte('f')
	if abs := math.Abs(x); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, x, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendJSONString writes s directly when it is printable ASCII without a
// quote or backslash, else through encoding/json (escapes, invalid UTF-8).
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			b, _ := appendJSONSlow(dst, s) // a string always encodes
			return b
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func appendJSONSlow(dst []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...), nil
}
