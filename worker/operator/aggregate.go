package operator

import (
	"errors"
	"fmt"
	"math"

	"github.com/weir-stream/weir/dataflow/state"
)

// aggFn is an aggregate function.
type aggFn uint8

const (
	aggCount aggFn = iota + 1
	aggSum
	aggMin
	aggMax
	aggAvg
	aggCountDistinct
	aggFirst
	aggLast
	aggArgMax
	aggArgMin
)

var aggNames = [...]string{aggCount: "count", aggSum: "sum", aggMin: "min", aggMax: "max", aggAvg: "avg",
	aggCountDistinct: "count_distinct", aggFirst: "first", aggLast: "last", aggArgMax: "arg_max", aggArgMin: "arg_min"}

func (f aggFn) String() string {
	if int(f) < len(aggNames) && aggNames[f] != "" {
		return aggNames[f]
	}
	return fmt.Sprintf("aggregate(%d)", uint8(f))
}

func aggFnNamed(s string) (aggFn, bool) {
	for i, n := range aggNames {
		if n != "" && n == s {
			return aggFn(i), true
		}
	}
	return 0, false
}

// cell is the running state of one aggregate in one window.
//   - count: n.
//   - sum, avg: n values seen (nil ignored), their sum in i while every
//     value was an int64 and it did not overflow, else in f (flt set).
//   - min, max: n values seen, the current extreme in v.
//   - count_distinct: the distinct values seen in set (n is its size).
//   - first, last: n values seen, the value in v and its time in i: the
//     earliest (first) or latest (last) event time, and among values of
//     the same time the smallest (first) or largest (last) in the key
//     order, so the result does not depend on the order records arrive in.
//   - arg_max, arg_min: n values seen, the extreme in v, the event time of
//     its record in i and the record's fields in rec; between equal values
//     the earlier event time wins, then the record that came first.
type cell struct {
	n   int64
	i   int64
	f   float64
	flt bool
	v   any
	set map[any]struct{}
	rec map[string]any
}

// isArg reports whether fn outputs a whole record (arg_max, arg_min).
func (f aggFn) isArg() bool { return f == aggArgMax || f == aggArgMin }

// compares reports whether fn compares values, so that a string and a
// number in one window conflict (min, max, arg_max, arg_min).
func (f aggFn) compares() bool { return f == aggMin || f == aggMax || f.isArg() }

var (
	errNotNumber     = errors.New("wants a number")
	errNotComparable = errors.New("wants numbers or strings")
	errNotScalar     = errors.New("wants a number, string, bool or null")
)

// checkArg validates a value for an aggregate before any window changes, so
// a record that fails leaves no partial update behind.
func checkArg(fn aggFn, v any) error {
	switch fn {
	case aggSum, aggAvg:
		switch v.(type) {
		case nil, int64, float64:
			return nil
		}
		return fmt.Errorf("%w, got %s", errNotNumber, typeName(v))
	case aggMin, aggMax, aggArgMax, aggArgMin:
		switch x := v.(type) {
		case nil, int64, string:
			return nil
		case float64:
			if math.IsNaN(x) {
				return errors.New("wants a number, got NaN")
			}
			return nil
		}
		return fmt.Errorf("%w, got %s", errNotComparable, typeName(v))
	case aggCountDistinct, aggFirst, aggLast:
		switch x := v.(type) {
		case nil, bool, int64, string:
			return nil
		case float64:
			if math.IsNaN(x) {
				return errors.New("wants a number, got NaN")
			}
			return nil
		}
		return fmt.Errorf("%w, got %s", errNotScalar, typeName(v))
	}
	return nil
}

// conflicts reports whether a min/max value cannot be compared with the
// window's current extreme (a string against a number).
func (c *cell) conflicts(v any) bool {
	if v == nil || c.v == nil {
		return false
	}
	_, s1 := v.(string)
	_, s2 := c.v.(string)
	return s1 != s2
}

// addArg folds a checked value of a record at time t into an arg_max or
// arg_min cell and reports whether the record is the new extreme (the
// caller then stores its fields in rec).
func (c *cell) addArg(fn aggFn, v any, t int64) bool {
	if v == nil {
		return false
	}
	c.n++
	if c.n > 1 {
		d := state.CompareKeys(v, c.v)
		if fn == aggArgMin {
			d = -d
		}
		if d < 0 || d == 0 && t >= c.i {
			return false
		}
	}
	c.v, c.i = v, t
	return true
}

// add folds a checked value of a record at time t into the cell.
func (c *cell) add(fn aggFn, v any, t int64) {
	switch fn {
	case aggCount:
		c.n++
	case aggSum, aggAvg:
		switch x := v.(type) {
		case int64:
			c.n++
			if c.flt {
				c.f += float64(x)
				return
			}
			s := c.i + x
			if (s > c.i) == (x > 0) || x == 0 {
				c.i = s
				return
			}
			// int64 overflow: continue in float64 rather than wrap.
			c.flt = true
			c.f = float64(c.i) + float64(x)
			c.i = 0
		case float64:
			c.n++
			if !c.flt {
				c.flt = true
				c.f = float64(c.i)
				c.i = 0
			}
			c.f += x
		}
	case aggMin, aggMax:
		if v == nil {
			return
		}
		c.n++
		if c.v == nil {
			c.v = v
			return
		}
		d := state.CompareKeys(v, c.v)
		if fn == aggMin && d < 0 || fn == aggMax && d > 0 {
			c.v = v
		}
	case aggCountDistinct:
		if v == nil {
			return
		}
		if c.set == nil {
			c.set = map[any]struct{}{}
		}
		c.set[v] = struct{}{}
		c.n = int64(len(c.set))
	case aggFirst, aggLast:
		if v == nil {
			return
		}
		c.n++
		if c.n == 1 {
			c.v, c.i = v, t
			return
		}
		switch {
		case fn == aggFirst && (t < c.i || t == c.i && state.CompareKeys(v, c.v) < 0),
			fn == aggLast && (t > c.i || t == c.i && state.CompareKeys(v, c.v) > 0):
			c.v, c.i = v, t
		}
	}
}

// result is the aggregate's value: SQL semantics, so sum, avg, min and max
// over no non-null value are null.
func (c *cell) result(fn aggFn) any {
	switch fn {
	case aggCount:
		return c.n
	case aggSum:
		if c.n == 0 {
			return nil
		}
		if c.flt {
			return c.f
		}
		return c.i
	case aggAvg:
		if c.n == 0 {
			return nil
		}
		if c.flt {
			return c.f / float64(c.n)
		}
		return float64(c.i) / float64(c.n)
	case aggMin, aggMax, aggFirst, aggLast:
		return c.v
	case aggCountDistinct:
		return c.n
	case aggArgMax, aggArgMin:
		if c.rec == nil {
			return nil
		}
		return c.rec
	}
	return nil
}
