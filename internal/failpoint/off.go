//go:build !failpoints

package failpoint

// Enabled reports whether failpoints are compiled in.
const Enabled = false

// Inject does nothing without the failpoints build tag.
func Inject(string) error { return nil }
