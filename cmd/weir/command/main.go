package command

import (
	"os"

	// hdfs:// checkpoint storage registers itself; it is here rather than
	// in package main so that a custom build (weir build), whose main is
	// generated, has it too.
	_ "github.com/weir-stream/weir/checkpoint/hdfs"
)

// Main runs the CLI on the process's arguments and exits with its code:
// the whole of weir's main, and of the main `weir build` generates.
func Main() { os.Exit(Execute(os.Args[1:])) }
