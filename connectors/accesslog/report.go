package accesslog

import (
	"fmt"
	"strings"
)

// Report is the outcome of checking a job's output against the model, as
// `weir verify ip-visits -o json` prints it and the multi-process tests
// read it back.
type Report struct {
	OK         bool `json:"ok"`
	Matched    int  `json:"matched"`
	Lost       int  `json:"lost"`
	Duplicated int  `json:"duplicated"`
	Wrong      int  `json:"wrong"`
	Unexpected int  `json:"unexpected"`
	Pending    int  `json:"pending"`
	// LateCounted: wrong or unexpected windows explained by late events
	// the job counted instead of dropping.
	LateCounted int `json:"late_counted"`
	// Malformed are the output records that did not decode.
	Malformed []string `json:"malformed"`
	Examples  []string `json:"examples"`
}

// NewReport is r with its verdict ok and the malformed records, never with
// nil lists (they print as []).
func NewReport(r Result, ok bool, malformed []string) Report {
	out := Report{OK: ok, Matched: r.Matched, Lost: r.Lost, Duplicated: r.Duplicated, Wrong: r.Wrong,
		Unexpected: r.Unexpected, Pending: r.Pending, LateCounted: r.LateCounted,
		Malformed: append([]string{}, malformed...), Examples: append([]string{}, r.Examples...)}
	return out
}

func (r Report) String() string {
	return fmt.Sprintf("matched %d, lost %d, duplicated %d, wrong %d, unexpected %d (late events counted in %d), pending %d, malformed %d; examples:\n  %s",
		r.Matched, r.Lost, r.Duplicated, r.Wrong, r.Unexpected, r.LateCounted, r.Pending, len(r.Malformed), strings.Join(r.Examples, "\n  "))
}
