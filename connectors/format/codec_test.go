package format

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/weir-stream/weir/dataflow"
)

const userV1 = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}`
const userV2 = `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"email","type":["null","string"],"default":null}]}`

func newReg(t *testing.T, url string) *Registry {
	t.Helper()
	r, err := NewRegistry(RegistryConfig{URL: url, RetryBudget: 500 * time.Millisecond, RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEncoderDecoderThroughRegistry(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	reg := newReg(t, fake.URL())
	ctx := context.Background()
	enc, err := NewEncoder(ctx, reg, EncoderConfig{Format: Avro, Subject: "users-value", Schema: userV1})
	if err != nil {
		t.Fatal(err)
	}
	rec := dataflow.FieldsOf(map[string]any{"id": int64(1), "name": "ada"})
	b, err := enc.Append(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || int(b[4]) != enc.ID() {
		t.Fatalf("header % x, id %d", b[:5], enc.ID())
	}
	// Registering the same schema again keeps its id.
	enc2, err := NewEncoder(ctx, reg, EncoderConfig{Format: Avro, Subject: "users-value", Schema: userV1})
	if err != nil || enc2.ID() != enc.ID() {
		t.Fatalf("id %d, want %d (%v)", enc2.ID(), enc.ID(), err)
	}
	dec, err := NewDecoder(Avro, newReg(t, fake.URL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dec.Decode(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Map(), rec.Map()) {
		t.Fatalf("got %v", got)
	}
	// An encoder without a schema takes the subject's latest.
	enc3, err := NewEncoder(ctx, reg, EncoderConfig{Format: Avro, Subject: "users-value"})
	if err != nil || enc3.ID() != enc.ID() {
		t.Fatalf("latest: id %d, want %d (%v)", enc3.ID(), enc.ID(), err)
	}
	if _, err := NewEncoder(ctx, reg, EncoderConfig{Format: Avro, Subject: "nobody-value"}); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("no subject: %v", err)
	}
	// The wrong kind of schema under a subject is refused clearly.
	if _, err := NewEncoder(ctx, reg, EncoderConfig{Format: Protobuf, Subject: "users-value"}); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "AVRO") {
		t.Fatalf("wrong type: %v", err)
	}
}

// TestDecoderEvolution: records of v1 and v2 (an added field) of one
// subject decode interleaved, each with its own writer schema.
func TestDecoderEvolution(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	reg := newReg(t, fake.URL())
	ctx := context.Background()
	e1, err := NewEncoder(ctx, reg, EncoderConfig{Format: Avro, Subject: "u-value", Schema: userV1})
	if err != nil {
		t.Fatal(err)
	}
	e2, err := NewEncoder(ctx, reg, EncoderConfig{Format: Avro, Subject: "u-value", Schema: userV2})
	if err != nil {
		t.Fatal(err)
	}
	if e1.ID() == e2.ID() {
		t.Fatal("v2 got v1's id")
	}
	dec, _ := NewDecoder(Avro, reg, nil)
	b1, _ := e1.Append(nil, dataflow.FieldsOf(map[string]any{"id": int64(1), "name": "a"}))
	b2, _ := e2.Append(nil, dataflow.FieldsOf(map[string]any{"id": int64(2), "name": "b", "email": "b@x"}))
	for _, c := range []struct {
		b    []byte
		want map[string]any
	}{
		{b1, map[string]any{"id": int64(1), "name": "a"}},
		{b2, map[string]any{"id": int64(2), "name": "b", "email": "b@x"}},
		{b1, map[string]any{"id": int64(1), "name": "a"}},
	} {
		f, err := dec.Decode(ctx, c.b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f.Map(), c.want) {
			t.Fatalf("got %v, want %v", f.Map(), c.want)
		}
	}
}

func TestDecoderErrors(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	reg := newReg(t, fake.URL())
	ctx := context.Background()
	dec, _ := NewDecoder(Avro, reg, nil)
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"magic":     {[]byte{1, 0, 0, 0, 1, 2}, "unknown magic byte 0x01"},
		"short":     {[]byte{0, 0, 1}, "shorter than the 5-byte header"},
		"empty":     {nil, "empty value"},
		"unknown":   {[]byte{0, 0, 0, 0, 42, 2}, "schema id 42"},
		"truncated": {append(appendHeader(nil, mustRegister(t, fake, "x-value", userV1)), 2), "schema id"},
	} {
		_, err := dec.Decode(ctx, c.b)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want ErrMalformed with %q", name, err, c.want)
		}
	}
	// A Protobuf schema id given to an Avro reader is the value's fault.
	pid := mustRegisterType(t, fake, "p-value", "syntax = \"proto3\"; message M { int64 a = 1; }", sr.TypeProtobuf)
	if _, err := dec.Decode(ctx, append(appendHeader(nil, pid), 0)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "PROTOBUF") {
		t.Errorf("wrong type: %v", err)
	}
}

func mustRegister(t *testing.T, fake *srfake.Registry, subject, schema string) int {
	return mustRegisterType(t, fake, subject, schema, sr.TypeAvro)
}

func mustRegisterType(t *testing.T, fake *srfake.Registry, subject, schema string, typ sr.SchemaType) int {
	t.Helper()
	id, _, err := fake.RegisterSchema(subject, sr.Schema{Schema: schema, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRegistryDown: a registry that is not there is retried for the
// budget, then reported as unavailable (not as the record's fault).
func TestRegistryDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	dec, _ := NewDecoder(Avro, newReg(t, url), nil)
	_, err := dec.Decode(context.Background(), []byte{0, 0, 0, 0, 1, 2})
	if !errors.Is(err, ErrRegistryUnavailable) || errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "schema id 1") {
		t.Fatalf("error does not say where: %v", err)
	}

	// A registry that answers 503 is asked again until the budget ends.
	var asked atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer busy.Close()
	dec, _ = NewDecoder(Avro, newReg(t, busy.URL), nil)
	if _, err := dec.Decode(context.Background(), []byte{0, 0, 0, 0, 1, 2}); !errors.Is(err, ErrRegistryUnavailable) {
		t.Fatalf("err %v", err)
	}
	if asked.Load() < 2 {
		t.Fatalf("asked %d times, want retries", asked.Load())
	}
}

// TestRegistryRetriesThenAnswers: 5xx answers are retried; the schema
// is then fetched once per id however many decoders ask at once.
func TestRegistryRetriesThenAnswers(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	id := mustRegister(t, fake, "u-value", userV1)
	var fails, byID atomic.Int32
	fails.Store(2)
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			return false
		}
		if fails.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		byID.Add(1)
		return false
	})
	reg, err := NewRegistry(RegistryConfig{URL: fake.URL(), RetryBudget: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := NewDecoder(Avro, reg, nil)
	enc := &Encoder{format: Avro, id: id}
	c, _ := newAvroCodec(userV1)
	enc.c = &compiled{avro: c}
	b, _ := enc.Append(nil, dataflow.FieldsOf(map[string]any{"id": int64(5), "name": "e"}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f, err := dec.Decode(context.Background(), b); err != nil || f.Get("id") != int64(5) {
				t.Errorf("%v %v", f, err)
			}
		}()
	}
	wg.Wait()
	if n := byID.Load(); n != 1 {
		t.Fatalf("%d successful schema fetches, want 1", n)
	}
}

func TestRegistryAuth(t *testing.T) {
	fake := srfake.New(srfake.WithAuth("Bearer s3cret"))
	defer fake.Close()
	bad, _ := NewRegistry(RegistryConfig{URL: fake.URL(), BearerToken: "wrong"})
	_, err := NewEncoder(context.Background(), bad, EncoderConfig{Format: Avro, Subject: "a-value", Schema: userV1})
	if !errors.Is(err, ErrRegistryRefused) || !errors.Is(err, dataflow.ErrUnrecoverable) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("err %v", err)
	}
	good, _ := NewRegistry(RegistryConfig{URL: fake.URL(), BearerToken: "s3cret"})
	if _, err := NewEncoder(context.Background(), good, EncoderConfig{Format: Avro, Subject: "a-value", Schema: userV1}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRegistry(RegistryConfig{URL: "ftp://x"}); err == nil {
		t.Fatal("ftp url accepted")
	}
}

func TestRegistryIncompatible(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/versions") {
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema"}`))
			return true
		}
		return false
	})
	_, err := NewEncoder(context.Background(), newReg(t, fake.URL()), EncoderConfig{Format: Avro, Subject: "a-value", Schema: userV1})
	if !errors.Is(err, ErrRegistryRefused) || !strings.Contains(err.Error(), "incompatible") {
		t.Fatalf("err %v", err)
	}
}

// TestRegistryForgetsUnknownIDs: values naming ever new unknown ids do
// not grow the cache without bound.
func TestRegistryForgetsUnknownIDs(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	reg := newReg(t, fake.URL())
	id := mustRegister(t, fake, "u-value", userV1)
	if _, err := reg.SchemaByID(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	for i := range maxCachedIDs + 10 {
		if _, err := reg.SchemaByID(context.Background(), 1000+i); !errors.Is(err, ErrUnknownSchema) {
			t.Fatalf("id %d: %v", 1000+i, err)
		}
	}
	reg.mu.Lock()
	n := len(reg.byID)
	_, kept := reg.byID[id]
	reg.mu.Unlock()
	if n > maxCachedIDs || !kept {
		t.Fatalf("cache holds %d ids (bound %d), known id kept: %v", n, maxCachedIDs, kept)
	}
}
