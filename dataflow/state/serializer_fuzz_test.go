package state

import (
	"testing"
)

type fuzzShape struct {
	A int64             `json:"a"`
	B string            `json:"b"`
	C []float64         `json:"c"`
	D map[string]string `json:"d"`
}

// FuzzDecodeValue feeds arbitrary bytes, as a restored snapshot may hold,
// to the default serializers of several types: they return a value or an
// error, never panic, and what decodes encodes again and decodes to the
// same encoding.
func FuzzDecodeValue(f *testing.F) {
	seed := func(b []byte, err error) {
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(DefaultSerializer[int64]().Append(nil, -42))
	seed(DefaultSerializer[float64]().Append(nil, 2.5))
	seed(DefaultSerializer[string]().Append(nil, "x"))
	seed(DefaultSerializer[bool]().Append(nil, true))
	seed(DefaultSerializer[fuzzShape]().Append(nil, fuzzShape{A: 1, B: "b", C: []float64{1}, D: map[string]string{"k": "v"}}))
	f.Add([]byte{fmtJSON, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip(t, DefaultSerializer[int64](), b)
		roundTrip(t, DefaultSerializer[int](), b)
		roundTrip(t, DefaultSerializer[float64](), b)
		roundTrip(t, DefaultSerializer[string](), b)
		roundTrip(t, DefaultSerializer[bool](), b)
		roundTrip(t, DefaultSerializer[fuzzShape](), b)
		roundTrip(t, DefaultSerializer[[]any](), b)
	})
}

func roundTrip[T any](t *testing.T, s Serializer[T], b []byte) {
	v, err := s.Decode(b)
	if err != nil {
		return
	}
	enc, err := s.Append(nil, v)
	if err != nil {
		return // a float that JSON cannot hold
	}
	v2, err := s.Decode(enc)
	if err != nil {
		t.Fatalf("%T: re-encoding %x does not decode: %v", v, enc, err)
	}
	enc2, _ := s.Append(nil, v2)
	if string(enc) != string(enc2) {
		t.Fatalf("%T: %x then %x", v, enc, enc2)
	}
}
