// Package examples embeds the example job specs so `weir dev --example`
// works from any directory.
package examples

import _ "embed"

// IPVisits is examples/ip-visits.yaml.
//
//go:embed ip-visits.yaml
var IPVisits []byte
