package sdk

import (
	"fmt"
	"time"

	"github.com/weir-stream/weir/dataflow/state"
)

// TTL is a state's time to live, in processing time. An expired entry is
// never returned; weir drops expired entries as it goes, and leaves them
// out of checkpoints.
type TTL struct {
	// Duration is the time to live; 0 (the default) keeps state until
	// the function clears it.
	Duration time.Duration
	// RefreshOnRead extends an entry's life when it is read, not only
	// when it is written.
	RefreshOnRead bool
}

func (t TTL) backend() state.TTL {
	u := state.OnCreateAndWrite
	if t.RefreshOnRead {
		u = state.OnReadAndWrite
	}
	return state.TTL{Duration: t.Duration, Update: u}
}

// ValueDescriptor declares a Value state: its name, unique in the
// operator (a restore finds the state by it), and its time to live. T is
// encoded as described in docs/sdk.md ("State evolution").
type ValueDescriptor[T any] struct {
	Name string
	TTL  TTL
}

// MapDescriptor declares a Map state; the TTL applies to each entry.
type MapDescriptor[K comparable, V any] struct {
	Name string
	TTL  TTL
}

// ListDescriptor declares a List state; the TTL applies to the list.
type ListDescriptor[T any] struct {
	Name string
	TTL  TTL
}

// ReducingDescriptor declares a Reducing state: values added are folded
// into one with Reduce.
type ReducingDescriptor[T any] struct {
	Name   string
	TTL    TTL
	Reduce func(acc, v T) T
}

// Aggregator folds inputs of type IN into an accumulator ACC and reads a
// result OUT from it.
type Aggregator[IN, ACC, OUT any] interface {
	CreateAccumulator() ACC
	Add(acc ACC, v IN) ACC
	Result(acc ACC) OUT
}

// AggregatingDescriptor declares an Aggregating state.
type AggregatingDescriptor[IN, ACC, OUT any] struct {
	Name       string
	TTL        TTL
	Aggregator Aggregator[IN, ACC, OUT]
}

func declareErr(name string, err error) error {
	return fmt.Errorf("sdk: declare state %q: %w", name, err)
}

// Value is a single value per key.
type Value[T any] struct {
	c *core
	s *state.Value[T]
}

// NewValue declares a Value state. Call it from Open.
func NewValue[T any](ctx *OpenContext, d ValueDescriptor[T]) (*Value[T], error) {
	s, err := state.NewValue[T](ctx.c.backend, state.Descriptor{Name: d.Name, Kind: state.KindValue, TTL: d.TTL.backend()}, nil)
	if err != nil {
		return nil, declareErr(d.Name, err)
	}
	return &Value[T]{c: ctx.c, s: s}, nil
}

// Get returns the current key's value and whether it has one.
func (v *Value[T]) Get() (T, bool, error) {
	if err := v.c.checkCall(); err != nil {
		var zero T
		return zero, false, err
	}
	return v.s.Get(0)
}

// Update sets the current key's value.
func (v *Value[T]) Update(val T) error {
	if err := v.c.checkCall(); err != nil {
		return err
	}
	return v.s.Put(0, val)
}

// Clear removes the current key's value.
func (v *Value[T]) Clear() error {
	if err := v.c.checkCall(); err != nil {
		return err
	}
	return v.s.Delete(0)
}

// Map is a map per key.
type Map[K comparable, V any] struct {
	c *core
	s *state.Map[K, V]
}

// NewMap declares a Map state. Call it from Open.
func NewMap[K comparable, V any](ctx *OpenContext, d MapDescriptor[K, V]) (*Map[K, V], error) {
	s, err := state.NewMap[K, V](ctx.c.backend, state.Descriptor{Name: d.Name, Kind: state.KindMap, TTL: d.TTL.backend()}, nil, nil)
	if err != nil {
		return nil, declareErr(d.Name, err)
	}
	return &Map[K, V]{c: ctx.c, s: s}, nil
}

// Get returns the value under k in the current key's map.
func (m *Map[K, V]) Get(k K) (V, bool, error) {
	if err := m.c.checkCall(); err != nil {
		var zero V
		return zero, false, err
	}
	return m.s.Get(0, k)
}

// Put sets k to v in the current key's map.
func (m *Map[K, V]) Put(k K, v V) error {
	if err := m.c.checkCall(); err != nil {
		return err
	}
	return m.s.Put(0, k, v)
}

// Remove deletes k from the current key's map.
func (m *Map[K, V]) Remove(k K) error {
	if err := m.c.checkCall(); err != nil {
		return err
	}
	return m.s.Delete(0, k)
}

// Range calls fn for each entry of the current key's map, in no
// particular order, until fn returns false. fn must not change the map.
func (m *Map[K, V]) Range(fn func(k K, v V) bool) error {
	if err := m.c.checkCall(); err != nil {
		return err
	}
	return m.s.Range(0, fn)
}

// Len returns the number of entries in the current key's map.
func (m *Map[K, V]) Len() (int, error) {
	if err := m.c.checkCall(); err != nil {
		return 0, err
	}
	n := 0
	err := m.s.Range(0, func(K, V) bool { n++; return true })
	return n, err
}

// Clear removes the current key's whole map.
func (m *Map[K, V]) Clear() error {
	if err := m.c.checkCall(); err != nil {
		return err
	}
	return m.s.Clear(0)
}

// List is a list per key.
type List[T any] struct {
	c *core
	s *state.List[T]
}

// NewList declares a List state. Call it from Open.
func NewList[T any](ctx *OpenContext, d ListDescriptor[T]) (*List[T], error) {
	s, err := state.NewList[T](ctx.c.backend, state.Descriptor{Name: d.Name, Kind: state.KindList, TTL: d.TTL.backend()}, nil)
	if err != nil {
		return nil, declareErr(d.Name, err)
	}
	return &List[T]{c: ctx.c, s: s}, nil
}

// Get returns a copy of the current key's list.
func (l *List[T]) Get() ([]T, error) {
	if err := l.c.checkCall(); err != nil {
		return nil, err
	}
	return l.s.Get(0)
}

// Add appends v to the current key's list.
func (l *List[T]) Add(v T) error {
	if err := l.c.checkCall(); err != nil {
		return err
	}
	return l.s.Add(0, v)
}

// Update replaces the current key's list.
func (l *List[T]) Update(vs []T) error {
	if err := l.c.checkCall(); err != nil {
		return err
	}
	return l.s.Update(0, vs)
}

// Clear removes the current key's list.
func (l *List[T]) Clear() error {
	if err := l.c.checkCall(); err != nil {
		return err
	}
	return l.s.Delete(0)
}

// Reducing folds the values added for a key into one.
type Reducing[T any] struct {
	c      *core
	s      *state.Value[T]
	reduce func(T, T) T
}

// NewReducing declares a Reducing state. Call it from Open.
func NewReducing[T any](ctx *OpenContext, d ReducingDescriptor[T]) (*Reducing[T], error) {
	if d.Reduce == nil {
		return nil, declareErr(d.Name, fmt.Errorf("Reduce is nil"))
	}
	s, err := state.NewValue[T](ctx.c.backend, state.Descriptor{Name: d.Name, Kind: state.KindReducing, TTL: d.TTL.backend()}, nil)
	if err != nil {
		return nil, declareErr(d.Name, err)
	}
	return &Reducing[T]{c: ctx.c, s: s, reduce: d.Reduce}, nil
}

// Get returns the current key's folded value and whether it has one.
func (r *Reducing[T]) Get() (T, bool, error) {
	if err := r.c.checkCall(); err != nil {
		var zero T
		return zero, false, err
	}
	return r.s.Get(0)
}

// Add folds v into the current key's value.
func (r *Reducing[T]) Add(v T) error {
	if err := r.c.checkCall(); err != nil {
		return err
	}
	acc, ok, err := r.s.Get(0)
	if err != nil {
		return err
	}
	if ok {
		v = r.reduce(acc, v)
	}
	return r.s.Put(0, v)
}

// Clear removes the current key's value.
func (r *Reducing[T]) Clear() error {
	if err := r.c.checkCall(); err != nil {
		return err
	}
	return r.s.Delete(0)
}

// Aggregating folds inputs for a key into an accumulator and reads a
// result from it.
type Aggregating[IN, ACC, OUT any] struct {
	c   *core
	s   *state.Value[ACC]
	agg Aggregator[IN, ACC, OUT]
}

// NewAggregating declares an Aggregating state. Call it from Open.
func NewAggregating[IN, ACC, OUT any](ctx *OpenContext, d AggregatingDescriptor[IN, ACC, OUT]) (*Aggregating[IN, ACC, OUT], error) {
	if d.Aggregator == nil {
		return nil, declareErr(d.Name, fmt.Errorf("Aggregator is nil"))
	}
	s, err := state.NewValue[ACC](ctx.c.backend, state.Descriptor{Name: d.Name, Kind: state.KindAggregating, TTL: d.TTL.backend()}, nil)
	if err != nil {
		return nil, declareErr(d.Name, err)
	}
	return &Aggregating[IN, ACC, OUT]{c: ctx.c, s: s, agg: d.Aggregator}, nil
}

// Get returns the result for the current key and whether anything was
// added.
func (a *Aggregating[IN, ACC, OUT]) Get() (OUT, bool, error) {
	var zero OUT
	if err := a.c.checkCall(); err != nil {
		return zero, false, err
	}
	acc, ok, err := a.s.Get(0)
	if err != nil || !ok {
		return zero, false, err
	}
	return a.agg.Result(acc), true, nil
}

// Add folds v into the current key's accumulator.
func (a *Aggregating[IN, ACC, OUT]) Add(v IN) error {
	if err := a.c.checkCall(); err != nil {
		return err
	}
	acc, ok, err := a.s.Get(0)
	if err != nil {
		return err
	}
	if !ok {
		acc = a.agg.CreateAccumulator()
	}
	return a.s.Put(0, a.agg.Add(acc, v))
}

// Clear removes the current key's accumulator.
func (a *Aggregating[IN, ACC, OUT]) Clear() error {
	if err := a.c.checkCall(); err != nil {
		return err
	}
	return a.s.Delete(0)
}
