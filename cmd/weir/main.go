// Command weir is the weir stream processor: coordinator, worker, dev mode
// and the client verbs, in one binary.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "weir: not yet")
	os.Exit(2)
}
