// Package hdfstest is an in-process HDFS for tests: one NameNode and one
// DataNode on loopback ports, speaking the real Hadoop wire protocols, so
// that weir's hdfs:// checkpoint storage is tested through the unmodified
// github.com/colinmarc/hdfs/v2 client. It is test infrastructure, not a
// product: no Go HDFS server exists, and a real cluster needs Hadoop's Java
// artifacts.
//
// # What it speaks
//
// NameNode, Hadoop IPC (org.apache.hadoop.ipc.Server, protocol version 9):
// the "hrpc" preamble with simple auth, the IpcConnectionContextProto frame
// (callId -3), then frames of a big-endian uint32 length followed by
// varint-delimited RpcRequestHeaderProto, RequestHeaderProto and the
// request; answers are RpcResponseHeaderProto plus the response, or an
// error status with the Java exception class the client interprets
// (FileNotFoundException, FileAlreadyExistsException,
// AccessControlException, ...). Methods of ClientProtocol: getFileInfo,
// mkdirs, getServerDefaults, create, addBlock, updateBlockForPipeline,
// complete, getBlockLocations, rename2, rename, delete, getListing (paged,
// Config.ListingLimit) and renewLease. Any other method gets
// RpcNoSuchMethodException.
//
// DataNode, data transfer protocol version 28: WRITE_BLOCK (stage
// PIPELINE_SETUP_CREATE) answers BlockOpResponseProto, then reads packets
// (uint32 payload length, uint16 header length, PacketHeaderProto, one
// checksum per chunk, data), checks their offsets and CRC32C (or CRC32)
// checksums, and acknowledges each with a PipelineAckProto; heartbeat
// packets (seqno -1) are acknowledged too. READ_BLOCK answers with
// ReadOpChecksumInfoProto and sends 64 KiB packets of whole 512-byte chunks
// with CRC32C checksums from the chunk that holds the requested offset,
// then an empty last packet.
//
// The messages are generated from proto/hadoop/v1/hadoop.proto, a subset of
// Hadoop's .proto files with their field numbers and types; generated code
// (rather than hand encoding with protowire) checks every required field on
// both sides, which is how Hadoop's proto2 contract is enforced.
//
// # Faults
//
// StopNameNode/StartNameNode (or StopNameNodeAt/StartNameNodeAt for one
// endpoint) take the namenode down (its port refuses connections and open
// connections are closed) and bring it back on the same address.
// Config.NameNodes > 1 gives an HA pair: several endpoints over one
// namespace, of which SetStandby makes some answer every call with
// StandbyException, as a standby does. SetFaults injects: DropWriteAfter (the datanode closes a
// WRITE_BLOCK connection mid-block, without acknowledging), AckDelay (slow
// pipeline acks), RPCDelay (a slow or hung namenode) and DenyWrite
// (AccessControlException under path prefixes). ProtocolErrors lists every
// wire violation the server saw, so tests can assert that the client spoke
// the protocol correctly; Calls counts namenode methods.
//
// # Limits
//
//   - One datanode, replication 1: no pipelines of several datanodes, no
//     pipeline recovery (updatePipeline), no re-replication, no block
//     reports or heartbeats between the nodes (they share memory).
//   - Everything is in memory and lost on Close; blocks of a 64 MiB file
//     take 64 MiB.
//   - Simple authentication only: no SASL, no Kerberos, no block tokens (an
//     empty token is handed out), no encrypted data transfer. Permissions
//     are recorded but not enforced, except through the DenyWrite fault.
//   - Leases never expire and there is no lease recovery: a file whose
//     writer died stays under construction (visible with length 0 and not
//     complete) until it is deleted. Renewals are accepted and counted.
//   - No append, truncate, snapshots, symlinks, quotas, xattrs, ACLs,
//     encryption zones, erasure coding or safe mode. Overwriting create is
//     supported, append is refused.
//   - HA is only the client's view of it: the endpoints share one namespace
//     in memory, a standby answers StandbyException, and nothing fences two
//     active endpoints (no journal, no ZKFC, no edit log tailing).
//   - Length of a file being written counts only bytes the datanode has
//     received, not what the client buffered.
//   - The namenode answers one call at a time per connection (as the
//     client sends them); concurrent clients are served concurrently.
package hdfstest
