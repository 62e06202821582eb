// Package sinks holds the simple sinks: stdout and file (one record per
// line, JSON or raw) and discard (counts, for benchmarks).
//
// Stdout delivers at least once: lines written before a failure are not
// taken back. So does the file sink of a job without checkpoints: it
// appends to one file per subtask and flushes when its buffer fills, on
// watermarks, at savepoints and on Close.
//
// # Exactly-once file sink
//
// In a job that takes checkpoints (dataflow.Context.Checkpointing) the file
// sink writes exactly once, as Flink's FileSink does: file.path is a
// directory, and each subtask writes part files that become visible only
// when the checkpoint that covers them completes. A part's committed name
// is part-<job>-<subtask>-<attempt>-<n> (n counts the subtask's parts in
// the attempt from 0); while it is written or waits for its checkpoint it
// is hidden as .part-<job>-<subtask>-<attempt>-<n>.inprogress.
//
// The protocol, step by step:
//
//  1. The first record after Open or after a barrier opens a new
//     in-progress part (an interval without records makes no file).
//  2. On barrier n (Snapshot, the pre-commit) the part is flushed, fsynced
//     and closed, the directory is fsynced, and the state lists every part
//     still pending with its checkpoint and its exact size.
//  3. On "checkpoint n complete" (NotifyCheckpointComplete) the parts
//     pending for n and earlier are renamed to their committed names and
//     the directory is fsynced.
//  4. On restore, Open commits the parts pending in the restored
//     checkpoint (they belong to a completed checkpoint whose notification
//     may not have arrived), then deletes the in-progress parts that
//     earlier attempts of this job left for the subtasks this one owns:
//     their records come again from the replay.
//  5. At the end of a bounded input the final checkpoint (taken after the
//     final watermark) pre-commits the last part and its notification
//     commits it before the subtasks finish, so a finished job has all of
//     its output visible. Records emitted while operators close, after the
//     final checkpoint, are committed by Close.
//
// Committing is idempotent: when the in-progress file is gone, the
// committed file must exist with exactly the pre-committed size, else the
// output of a completed checkpoint is lost and the task fails saying so.
// An in-progress file longer than pre-committed is cut to its size first
// (Flink's recoverable writers do the same); a shorter one is an error.
//
// Zombies. A worker that is paused past the heartbeat timeout (SIGSTOP, a
// long GC, a partition) keeps running its subtasks of attempt a when it
// wakes while attempt a+1 runs elsewhere. It cannot spoil the output:
//
//   - Every file it opens has a in its name, so it never writes into a
//     file of attempt a+1; what it writes after the restore goes to
//     in-progress files that were deleted (an unlinked inode) or that no
//     checkpoint of a+1 lists, and the next restore deletes those.
//   - It can only commit parts of checkpoints of attempt a that completed.
//     A part is never written after its pre-commit, and its committed name
//     is fixed by its in-progress name, so the zombie's rename and the
//     restore's rename of the same part move the same bytes to the same
//     name: whichever comes second finds the source gone and the target
//     right. Parts of checkpoints of attempt a that did not complete are
//     never committed: the coordinator does not complete checkpoints of an
//     attempt it has replaced, and the restore deleted their files.
//
// The job id in the names keeps two jobs writing to one directory apart;
// two file sinks of one job must not share a directory. Restored at another
// parallelism, subtask i commits and cleans the parts of old subtasks j
// with j % parallelism == i.
package sinks
