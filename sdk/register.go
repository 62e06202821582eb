package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
)

// Validator is implemented by config types that check themselves. weir
// calls Validate when a job is submitted, after decoding the node's
// config, and refuses the job when it fails. Return ConfigError values
// (several with errors.Join) to point at fields.
type Validator interface {
	Validate() error
}

// ConfigError returns an error about one field of an operator's config;
// field is its path in the config ("limits.max"). The job's error then
// names the field's place in the spec:
// pipeline[2].process.config.limits.max: must be positive.
func ConfigError(field, format string, args ...any) error {
	return &registry.ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// RegisterProcess registers a keyed process function under id, a
// namespaced name such as "acme.fraud_alert" (lower-case, dot-separated,
// your organisation or module first). Call it from an init function:
//
//	func init() { sdk.RegisterProcess("acme.dedup", NewDedup) }
//
// factory makes the function of one subtask from the node's config: the
// spec's process.config mapping decoded into C as JSON would be (field
// names by `json` tags; unknown fields are errors). When C implements
// Validator, Validate runs when the job is submitted, so a bad config is
// refused then with the path of the field. Use struct{} for no config.
//
// IN and OUT are Record or structs with `weir` field tags. RegisterProcess
// panics when id is malformed or taken or the types cannot be records:
// programming errors, found as the binary starts.
func RegisterProcess[C, IN, OUT any](id string, factory func(config C) (ProcessFunction[IN, OUT], error)) {
	if factory == nil {
		panic("sdk.RegisterProcess " + id + ": nil factory")
	}
	in, err := recordTypeOf[IN]()
	if err != nil {
		panic(fmt.Sprintf("sdk.RegisterProcess %s: input %v", id, err))
	}
	out, err := recordTypeOf[OUT]()
	if err != nil {
		panic(fmt.Sprintf("sdk.RegisterProcess %s: output %v", id, err))
	}
	pkg, mod, ver := caller()
	e := registry.Entry{
		ID: id, Kind: registry.KindProcess, Package: pkg, Module: mod, Version: ver,
		Check: func(cfg spec.Config) error {
			_, err := decodeConfig[C](cfg)
			return err
		},
		New: func(cfg spec.Config, ctx *dataflow.Context) (dataflow.Operator, error) {
			c, err := decodeConfig[C](cfg)
			if err != nil {
				return nil, fmt.Errorf("operator %s: config: %w", id, err)
			}
			fn, err := callFactory(factory, c)
			if err != nil {
				return nil, fmt.Errorf("operator %s: %w", id, err)
			}
			if fn == nil {
				return nil, fmt.Errorf("operator %s: the factory returned no function", id)
			}
			return newProcessOp(id, fn, in, out, ctx, nil), nil
		},
	}
	if err := registry.Register(e); err != nil {
		panic("sdk.RegisterProcess: " + err.Error())
	}
}

func callFactory[C, IN, OUT any](factory func(C) (ProcessFunction[IN, OUT], error), c C) (fn ProcessFunction[IN, OUT], err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("factory panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return factory(c)
}

// decodeConfig decodes cfg into C strictly and validates it.
func decodeConfig[C any](cfg spec.Config) (C, error) {
	var c C
	if cfg == nil {
		cfg = spec.Config{}
	}
	data, err := json.Marshal(map[string]any(cfg))
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, configDecodeError(err)
	}
	if err := validate(&c); err != nil {
		return c, err
	}
	return c, nil
}

func validate[C any](c *C) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("Validate panicked: %v", r)
		}
	}()
	if v, ok := any(c).(Validator); ok {
		return v.Validate()
	}
	if v, ok := any(*c).(Validator); ok {
		return v.Validate()
	}
	return nil
}

// configDecodeError turns encoding/json's errors into field errors.
func configDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &registry.ConfigError{Field: te.Field, Msg: fmt.Sprintf("want %s, got a %s", te.Type, te.Value)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &registry.ConfigError{Field: strings.Trim(f, `"`), Msg: "unknown field"}
	}
	return &registry.ConfigError{Msg: strings.TrimPrefix(msg, "json: ")}
}

// caller finds the package that called RegisterProcess and its module in
// the binary's build info, for `weir version` and placement by version.
func caller() (pkg, mod, ver string) {
	pc, _, _, ok := runtime.Caller(2)
	if ok {
		if f := runtime.FuncForPC(pc); f != nil {
			pkg = funcPackage(f.Name())
		}
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return pkg, "", ""
	}
	best := ""
	if strings.HasPrefix(pkg+"/", bi.Main.Path+"/") {
		best, mod, ver = bi.Main.Path, bi.Main.Path, bi.Main.Version
	}
	for _, d := range bi.Deps {
		m := d
		// A directory replacement has version "(devel)"; the required
		// version (weir build makes one from the sources) says more.
		if m.Replace != nil && m.Replace.Version != "" && m.Replace.Version != "(devel)" {
			m = m.Replace
			m.Path = d.Path
		}
		if strings.HasPrefix(pkg+"/", d.Path+"/") && len(d.Path) > len(best) {
			best, mod, ver = d.Path, d.Path, m.Version
		}
	}
	return pkg, mod, ver
}

// funcPackage extracts the package path from a function's full name
// ("github.com/acme/ops.init.0" → "github.com/acme/ops").
func funcPackage(name string) string {
	slash := strings.LastIndexByte(name, '/')
	dot := strings.IndexByte(name[slash+1:], '.')
	if dot < 0 {
		return name
	}
	return name[:slash+1+dot]
}

// OperatorInfo describes a registered operator.
type OperatorInfo struct {
	// ID is the registered id.
	ID string
	// Kind is "process", "source" or "sink".
	Kind string
	// Package registered it; Module and Version are its Go module.
	Package, Module, Version string
}

// Operators returns the operators registered in this binary, by id.
func Operators() []OperatorInfo {
	var out []OperatorInfo
	for _, e := range registry.All() {
		out = append(out, OperatorInfo{ID: e.ID, Kind: string(e.Kind), Package: e.Package, Module: e.Module, Version: e.Version})
	}
	return out
}
