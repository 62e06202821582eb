// Package pipeline runs jobs end to end through the real runtime (spec,
// graph, task runner, exchange between workers, connectors) on an
// in-process cluster (internal/cluster), and checks their output exactly:
// file sinks are read back per subtask, Kafka topics with a consumer.
package pipeline
