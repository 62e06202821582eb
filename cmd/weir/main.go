// Command weir is the weir stream processor: coordinator, worker, dev mode
// and the client verbs, in one binary. `weir build` generates the same main
// with user modules added, so everything else lives in package command.
package main

import "github.com/weir-stream/weir/cmd/weir/command"

func main() { command.Main() }
