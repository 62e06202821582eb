package sdk

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/weir-stream/weir/dataflow"
	"github.com/weir-stream/weir/dataflow/spec"
	"github.com/weir-stream/weir/internal/registry"
)

// RegisterSink registers a transactional sink under id, a namespaced name
// such as "acme.ledger", for spec nodes `sink: {connector: <id>, config:
// {...}}`. Call it from an init function. factory makes one subtask's
// sink from the node's config, decoded and validated as RegisterProcess
// describes (a Validator's errors are reported at submit with their spec
// path). IN is Record or a struct with `weir` field tags; TXN, the
// committable, must survive encoding/json (it is kept in checkpoints that
// way; the rules of "State evolution" in docs/sdk.md apply to it).
//
// A job with such a sink must take checkpoints with aligned barriers
// (checkpoint.mode exactly_once, the default): one without a checkpoint
// block, whose output would never be committed, or in mode
// at_least_once is refused at submit.
// RegisterSink panics when id is malformed or taken or IN cannot be a
// record.
func RegisterSink[C, IN, TXN any](id string, factory func(config C) (TransactionalSink[IN, TXN], error)) {
	if factory == nil {
		panic("sdk.RegisterSink " + id + ": nil factory")
	}
	in, err := recordTypeOf[IN]()
	if err != nil {
		panic(fmt.Sprintf("sdk.RegisterSink %s: input %v", id, err))
	}
	pkg, mod, ver := caller()
	e := registry.Entry{
		ID: id, Kind: registry.KindSink, Package: pkg, Module: mod, Version: ver, NeedsCheckpoints: true,
		Check: func(cfg spec.Config) error {
			_, err := decodeConfig[C](cfg)
			return err
		},
		New: func(cfg spec.Config, ctx *dataflow.Context) (dataflow.Operator, error) {
			c, err := decodeConfig[C](cfg)
			if err != nil {
				return nil, fmt.Errorf("sink %s: config: %w", id, err)
			}
			s, err := callConnectorFactory(factory, c)
			if err != nil {
				return nil, fmt.Errorf("sink %s: %w", id, err)
			}
			return newSinkOp(id, s, in, ctx), nil
		},
	}
	if err := registry.Register(e); err != nil {
		panic("sdk.RegisterSink: " + err.Error())
	}
}

// RegisterSource registers a source under id for spec nodes `source:
// {connector: <id>, config: {...}}`, with the node's event_time and
// schema applied as for the built-in sources. Call it from an init
// function; the factory and its config are as for RegisterSink. OUT is
// Record or a struct with `weir` field tags. RegisterSource panics when
// id is malformed or taken or OUT cannot be a record.
func RegisterSource[C, OUT any](id string, factory func(config C) (Source[OUT], error)) {
	if factory == nil {
		panic("sdk.RegisterSource " + id + ": nil factory")
	}
	out, err := recordTypeOf[OUT]()
	if err != nil {
		panic(fmt.Sprintf("sdk.RegisterSource %s: output %v", id, err))
	}
	pkg, mod, ver := caller()
	e := registry.Entry{
		ID: id, Kind: registry.KindSource, Package: pkg, Module: mod, Version: ver,
		Check: func(cfg spec.Config) error {
			_, err := decodeConfig[C](cfg)
			return err
		},
		NewSource: func(node *spec.Source, ctx *dataflow.Context) (dataflow.Source, error) {
			c, err := decodeConfig[C](node.Config)
			if err != nil {
				return nil, fmt.Errorf("source %s: config: %w", id, err)
			}
			s, err := callConnectorFactory(factory, c)
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", id, err)
			}
			op, err := newSourceOp(id, s, out, node, ctx)
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", id, err)
			}
			return op, nil
		},
	}
	if err := registry.Register(e); err != nil {
		panic("sdk.RegisterSource: " + err.Error())
	}
}

// callConnectorFactory calls a source's or sink's factory, turning a
// panic or a nil result into an error.
func callConnectorFactory[C, T any](factory func(C) (T, error), c C) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("factory panicked: %v\n%s", r, debug.Stack())
		}
	}()
	v, err = factory(c)
	if err == nil && any(v) == nil {
		err = fmt.Errorf("the factory returned nil")
	}
	return v, err
}

func stack() []byte { return debug.Stack() }

// connectorLogger is the subtask's logger, or one that discards.
func connectorLogger(ctx *dataflow.Context) *slog.Logger {
	if ctx.Logger != nil {
		return ctx.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// userMetrics are the subtask's user metrics (cur when the context has
// none, else a private set).
func userMetrics(ctx *dataflow.Context, cur *dataflow.UserMetrics) *dataflow.UserMetrics {
	switch {
	case ctx.Metrics != nil:
		return &ctx.Metrics.User
	case cur != nil:
		return cur
	}
	return &dataflow.UserMetrics{}
}
