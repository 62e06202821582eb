// Package dataflow is the job model shared by the coordinator and the workers:
// records and the in-band events that travel with them, the operator
// interfaces, partitioning through key groups, and the encoding of stream
// elements on the wire. The job spec lives in dataflow/spec and the logical
// graph in dataflow/graph.
package dataflow
