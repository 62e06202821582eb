package format

import (
	"encoding/binary"
	"fmt"
)

// headerLen is the magic byte and the 4-byte schema id.
const headerLen = 5

// maxIndexDepth bounds a Protobuf message-index array: message types
// nested deeper than this are not worth reading a hostile count for.
const maxIndexDepth = 32

// parseHeader splits a framed value into its schema id and the rest.
func parseHeader(b []byte) (int, []byte, error) {
	if len(b) == 0 {
		return 0, nil, fmt.Errorf("%w: empty value (no Confluent wire-format header)", ErrMalformed)
	}
	if b[0] != 0 {
		return 0, nil, fmt.Errorf("%w: unknown magic byte 0x%02x (want 0x00, the Confluent wire format; was it written without a schema registry?)", ErrMalformed, b[0])
	}
	if len(b) < headerLen {
		return 0, nil, fmt.Errorf("%w: %d-byte value is shorter than the 5-byte header", ErrMalformed, len(b))
	}
	return int(binary.BigEndian.Uint32(b[1:5])), b[headerLen:], nil
}

// appendHeader appends the magic byte and the schema id.
func appendHeader(b []byte, id int) []byte {
	return append(b, 0, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
}

// parseIndex reads a Protobuf message-index array.
func parseIndex(b []byte) ([]int, []byte, error) {
	n, k := binary.Varint(b)
	if k <= 0 {
		return nil, nil, fmt.Errorf("%w: truncated message-index array", ErrMalformed)
	}
	b = b[k:]
	if n == 0 {
		return []int{0}, b, nil
	}
	if n < 0 || n > maxIndexDepth {
		return nil, nil, fmt.Errorf("%w: message-index array of length %d", ErrMalformed, n)
	}
	idx := make([]int, n)
	for i := range idx {
		v, k := binary.Varint(b)
		if k <= 0 {
			return nil, nil, fmt.Errorf("%w: truncated message-index array", ErrMalformed)
		}
		if v < 0 || v > 1<<20 {
			return nil, nil, fmt.Errorf("%w: message index %d", ErrMalformed, v)
		}
		idx[i], b = int(v), b[k:]
	}
	return idx, b, nil
}

// appendIndex appends a Protobuf message-index array, [0] as the single
// byte 0 as Confluent's serializers do.
func appendIndex(b []byte, idx []int) []byte {
	if len(idx) == 1 && idx[0] == 0 {
		return append(b, 0)
	}
	b = binary.AppendVarint(b, int64(len(idx)))
	for _, i := range idx {
		b = binary.AppendVarint(b, int64(i))
	}
	return b
}
