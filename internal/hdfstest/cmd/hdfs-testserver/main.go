// Command hdfs-testserver runs internal/hdfstest's in-process HDFS as a
// process of its own, for multi-process tests and for trying hdfs://
// checkpoint storage on a laptop without Hadoop:
//
//	go run ./internal/hdfstest/cmd/hdfs-testserver -namenodes 1
//	weir coordinator --checkpoint-storage "hdfs://127.0.0.1:PORT/weir?user=weir"
//	weir worker
//
// It prints the namenode addresses and an hdfs:// URI on the first line of
// stdout, then serves until SIGINT or SIGTERM. Test infrastructure with the
// limits of the package (in memory, one datanode, no security).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/weir-stream/weir/internal/hdfstest"
)

func main() {
	blockSize := flag.Int64("block-size", 32<<20, "block size the namenode hands out")
	namenodes := flag.Int("namenodes", 1, "namenode endpoints over one namespace (2: an HA pair; the first is active)")
	flag.Parse()
	srv, err := hdfstest.Start(hdfstest.Config{BlockSize: *blockSize, NameNodes: *namenodes})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hdfs-testserver:", err)
		os.Exit(1)
	}
	fmt.Printf("namenodes=%s datanode=%s uri=hdfs://%s/weir?user=weir\n", srv.NameNodeAddrs(), srv.DataNodeAddr(), srv.NameNodeAddrs())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Close()
	for _, e := range srv.ProtocolErrors() {
		fmt.Fprintln(os.Stderr, "hdfs-testserver: protocol error:", e)
	}
}
