// Package hdfsfailover holds only tests: a whole in-process weir cluster
// (internal/cluster) with its checkpoints and job store on hdfs://, served
// by the in-process HDFS of internal/hdfstest, losing workers and HDFS
// nodes while a stateful job runs. It is a package of its own so that the
// storage's unit tests do not build the coordinator and the workers.
package hdfsfailover
