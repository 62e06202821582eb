// Command weir is the weir stream processor: coordinator, worker, dev mode
// and the client verbs, in one binary.
package main

import (
	"os"

	"github.com/weir-stream/weir/cmd/weir/command"
	// hdfs:// checkpoint storage registers itself.
	_ "github.com/weir-stream/weir/checkpoint/hdfs"
)

func main() {
	os.Exit(command.Execute(os.Args[1:]))
}
