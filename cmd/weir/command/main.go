package command

import (
	"os"

	// hdfs:// and s3:// checkpoint storage register themselves; they are
	// here rather than in package main so that a custom build (weir
	// build), whose main is generated, has them too.
	_ "github.com/weir-stream/weir/checkpoint/hdfs"
	_ "github.com/weir-stream/weir/checkpoint/s3"
)

// Main runs the CLI on the process's arguments and exits with its code:
// the whole of weir's main, and of the main `weir build` generates.
func Main() { os.Exit(Execute(os.Args[1:])) }
