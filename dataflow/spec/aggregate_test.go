package spec

import "testing"

func TestParseAggregateGrammar(t *testing.T) {
	for _, tc := range []struct {
		in, fn, arg string
		ok          bool
	}{
		{"count()", "count", "", true},
		{" COUNT( * ) ", "count", "", true},
		{"sum(bytes)", "sum", "bytes", true},
		{"avg( len(path) * 2 )", "avg", "len(path) * 2", true},
		{`max(s == ")" ? 1 : 2)`, "max", `s == ")" ? 1 : 2`, true},
		{"min(x)", "min", "x", true},
		{"count_distinct(user)", "count_distinct", "user", true},
		{"First(price)", "first", "price", true},
		{"last(price * 2)", "last", "price * 2", true},
		{"count_distinct()", "", "", false},
		{"first()", "", "", false},
		{"arg_max(price)", "arg_max", "price", true},
		{"arg_min(price)", "arg_min", "price", true},
		{"arg_max()", "", "", false},
		{"sum(a) + sum(b)", "", "", false},
		{"sum", "", "", false},
		{"(x)", "", "", false},
		{"sum(x", "", "", false},
		{"sum()", "", "", false},
		{"count(x)", "", "", false},
		{"median(x)", "", "", false},
		{`sum(")`, "", "", false},
	} {
		fn, arg, err := ParseAggregate(tc.in)
		if (err == nil) != tc.ok || fn != tc.fn || arg != tc.arg {
			t.Errorf("ParseAggregate(%q) = %q, %q, %v", tc.in, fn, arg, err)
		}
	}
}
