package format

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/weir-stream/weir/dataflow"
)

// Format is a registry-backed value format.
type Format string

// The formats, as the spec names them.
const (
	Avro       Format = "avro"
	Protobuf   Format = "protobuf"
	JSONSchema Format = "json_schema"
)

// Valid reports whether f is a registry-backed format.
func (f Format) Valid() bool { return f == Avro || f == Protobuf || f == JSONSchema }

func (f Format) srType() sr.SchemaType {
	switch f {
	case Protobuf:
		return sr.TypeProtobuf
	case JSONSchema:
		return sr.TypeJSON
	}
	return sr.TypeAvro
}

// maxRefs bounds the schemas one schema may pull in through references.
const maxRefs = 64

// compiled is the codec of one writer schema.
type compiled struct {
	avro  *avroCodec
	proto *protoSchema
}

// dep is a schema a schema references: its name (a Protobuf import path,
// an Avro type name) and text.
type dep struct {
	name, subject string
	version       int
	text          string
}

func compile(ctx context.Context, reg *Registry, f Format, s sr.Schema) (*compiled, error) {
	if s.Type != f.srType() {
		return nil, fmt.Errorf("%w: it is a %s schema, not %s", ErrSchema, s.Type, f)
	}
	var deps []dep
	if len(s.References) > 0 {
		if reg == nil {
			return nil, fmt.Errorf("%w: schema references need a registry", ErrSchema)
		}
		var err error
		if deps, err = resolveRefs(ctx, reg, s.References, nil, map[string]bool{}); err != nil {
			return nil, err
		}
	}
	switch f {
	case Avro:
		cache := &avro.SchemaCache{}
		for _, d := range deps {
			if _, err := avro.ParseWithCache(d.text, "", cache); err != nil {
				return nil, fmt.Errorf("%w: avro reference %q (subject %s version %d): %v", ErrSchema, d.name, d.subject, d.version, err)
			}
		}
		c, err := newAvroCodecCache(s.Schema, cache)
		if err != nil {
			return nil, err
		}
		return &compiled{avro: c}, nil
	case Protobuf:
		files := map[string]string{}
		for _, d := range deps {
			files[d.name] = d.text
		}
		p, err := newProtoSchema(s.Schema, files)
		if err != nil {
			return nil, err
		}
		return &compiled{proto: p}, nil
	}
	return &compiled{}, nil // JSON Schema: the payload is JSON
}

// resolveRefs fetches referenced schemas depth first, so each comes after
// the ones it references (the order Avro's parser needs).
func resolveRefs(ctx context.Context, reg *Registry, refs []sr.SchemaReference, out []dep, seen map[string]bool) ([]dep, error) {
	for _, ref := range refs {
		key := fmt.Sprintf("%s/%d", ref.Subject, ref.Version)
		if seen[key] {
			continue
		}
		seen[key] = true
		if len(seen) > maxRefs {
			return nil, fmt.Errorf("%w: more than %d referenced schemas", ErrSchema, maxRefs)
		}
		ss, err := reg.Version(ctx, ref.Subject, ref.Version)
		if err != nil {
			return nil, fmt.Errorf("reference %q: %w", ref.Name, err)
		}
		if out, err = resolveRefs(ctx, reg, ss.References, out, seen); err != nil {
			return nil, err
		}
		out = append(out, dep{name: ref.Name, subject: ref.Subject, version: ref.Version, text: ss.Schema.Schema})
	}
	return out, nil
}

// Decoder decodes framed values by their writer schemas. It is safe for
// concurrent use.
type Decoder struct {
	format Format
	reg    *Registry
	// json decodes a JSON Schema payload (the caller's JSON decoder, so
	// JSON reads the same with or without a registry).
	json func([]byte) (dataflow.Fields, error)

	mu   sync.Mutex
	byID map[int]*compiled
}

// NewDecoder makes a decoder of format f; json decodes JSON payloads
// (json_schema only).
func NewDecoder(f Format, reg *Registry, json func([]byte) (dataflow.Fields, error)) (*Decoder, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("format %q: want avro, protobuf or json_schema", f)
	}
	if f == JSONSchema && json == nil {
		return nil, errors.New("json_schema needs a JSON decoder")
	}
	return &Decoder{format: f, reg: reg, json: json, byID: map[int]*compiled{}}, nil
}

// Decode decodes one framed value. Errors that are the value's fault
// wrap ErrMalformed and name the schema id; ErrRegistryUnavailable and
// ErrRegistryRefused are not the value's fault.
func (d *Decoder) Decode(ctx context.Context, value []byte) (dataflow.Fields, error) {
	id, payload, err := parseHeader(value)
	if err != nil {
		return dataflow.Fields{}, err
	}
	c, err := d.codec(ctx, id)
	if err != nil {
		return dataflow.Fields{}, err
	}
	var f dataflow.Fields
	switch d.format {
	case Avro:
		f, err = c.avro.decode(payload)
	case Protobuf:
		var idx []int
		if idx, payload, err = parseIndex(payload); err == nil {
			d.mu.Lock() // the per-index cache
			var pc *protoCodec
			pc, err = c.proto.codec(idx)
			d.mu.Unlock()
			if err == nil {
				f, err = pc.decode(payload)
			}
		}
	case JSONSchema:
		if f, err = d.json(payload); err != nil && !errors.Is(err, ErrMalformed) {
			err = fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	if err != nil {
		return dataflow.Fields{}, fmt.Errorf("schema id %d: %w", id, err)
	}
	return f, nil
}

// codec returns the compiled writer schema of id, fetching it (through
// the registry's cache) and compiling it on first use.
func (d *Decoder) codec(ctx context.Context, id int) (*compiled, error) {
	d.mu.Lock()
	c, ok := d.byID[id]
	d.mu.Unlock()
	if ok {
		return c, nil
	}
	s, err := d.reg.SchemaByID(ctx, id)
	if err == nil {
		c, err = compile(ctx, d.reg, d.format, s)
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownSchema), errors.Is(err, ErrSchema):
		// The value names a schema weir cannot read: its fault.
		return nil, fmt.Errorf("%w: schema id %d: %w", ErrMalformed, id, err)
	default:
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	d.mu.Lock()
	if prev, ok := d.byID[id]; ok {
		c = prev
	} else {
		d.byID[id] = c
	}
	d.mu.Unlock()
	return c, nil
}

// Encoder frames values with one writer schema. It is not safe for
// concurrent use (a sink subtask owns one).
type Encoder struct {
	format Format
	id     int
	c      *compiled
	pc     *protoCodec
}

// EncoderConfig says which schema an Encoder writes with.
type EncoderConfig struct {
	Format  Format
	Subject string
	// Schema is the writer schema's text, registered under Subject when
	// the encoder opens; "" uses the subject's latest version.
	Schema string
	// Message is the Protobuf message to write, by full or short name
	// ("": the schema's first).
	Message string
}

// NewEncoder registers (or looks up) the writer schema and compiles it.
// Errors wrap ErrSchema for a schema that does not parse,
// ErrRegistryRefused for one the registry will not take, and
// ErrRegistryUnavailable.
func NewEncoder(ctx context.Context, reg *Registry, cfg EncoderConfig) (*Encoder, error) {
	if !cfg.Format.Valid() {
		return nil, fmt.Errorf("format %q: want avro, protobuf or json_schema", cfg.Format)
	}
	s := sr.Schema{Schema: cfg.Schema, Type: cfg.Format.srType()}
	var id int
	if cfg.Schema == "" {
		ss, err := reg.Latest(ctx, cfg.Subject)
		if err != nil {
			return nil, fmt.Errorf("no schema given, and taking subject %q's latest failed: %w", cfg.Subject, err)
		}
		s, id = ss.Schema, ss.ID
	}
	// Compiled before registering, so a schema that does not parse is
	// reported as such rather than as the registry's refusal.
	c, err := compile(ctx, reg, cfg.Format, s)
	if err != nil {
		return nil, fmt.Errorf("subject %q: %w", cfg.Subject, err)
	}
	e := &Encoder{format: cfg.Format, c: c}
	if cfg.Format == Protobuf {
		if e.pc, err = c.proto.message(cfg.Message); err != nil {
			return nil, fmt.Errorf("subject %q: %w", cfg.Subject, err)
		}
	}
	if cfg.Schema != "" {
		if id, err = reg.Register(ctx, cfg.Subject, s); err != nil {
			return nil, err
		}
	}
	e.id = id
	return e, nil
}

// CheckSchema compiles a writer schema without a registry, so a sink can
// report a schema that does not parse before it connects. A schema with
// references is only checked when the encoder opens.
func CheckSchema(f Format, text, message string) error {
	if text == "" || f == JSONSchema {
		return nil
	}
	c, err := compile(context.Background(), nil, f, sr.Schema{Schema: text, Type: f.srType()})
	if err != nil {
		return err
	}
	if f == Protobuf {
		_, err = c.proto.message(message)
	}
	return err
}

// ID is the writer schema's id.
func (e *Encoder) ID() int { return e.id }

// Append appends the framed value of f.
func (e *Encoder) Append(dst []byte, f dataflow.Fields) ([]byte, error) {
	dst = appendHeader(dst, e.id)
	var err error
	switch e.format {
	case Avro:
		dst, err = e.c.avro.encode(dst, f)
	case Protobuf:
		dst = appendIndex(dst, e.pc.index)
		dst, err = e.pc.encode(dst, f)
	case JSONSchema:
		dst, err = dataflow.AppendJSON(dst, f)
	}
	if err != nil {
		return nil, fmt.Errorf("%s (schema id %d): %w", e.format, e.id, err)
	}
	return dst, nil
}
