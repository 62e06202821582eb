// Package exchange is the data plane between tasks: input gates on the
// receiving side, senders on the sending side, and credit-based flow control
// between them, over one gRPC stream per channel between workers or an
// in-memory hand-off between two tasks on the same worker.
//
// A channel carries the elements from one upstream subtask to one downstream
// subtask over one edge of the job graph, identified by a datapb.ChannelID
// (job, attempt, edge, from_subtask, to_subtask).
//
// The receiving task's duties, step by step:
//
//  1. Before it starts reading, call OpenInputGate with every channel it
//     expects. Senders may connect before or after: a stream whose channel
//     is not registered yet waits (30 s by default) and then fails. Streams
//     of an attempt older than the newest one registered for the job are
//     refused, so a restarted job never reads leftovers of the failed one.
//  2. Call Next in a loop. It returns one batch (one frame) at a time, fairly
//     over the channels that have data and are not blocked. Every batch it
//     hands out returns one credit to that channel's sender. Every element
//     that is not a record (watermark, barrier, idle, end of stream) is the
//     last element of its batch, so a task can Block a channel right after a
//     barrier without holding back records that follow it.
//     Wake (from any goroutine) makes Next return an empty batch at once, so
//     the task can look at its mailbox.
//  3. Next returns io.EOF once end of stream has been handed out on every
//     channel, and an error naming the channel when one breaks before its
//     end of stream (the upstream task or its worker failed).
//  4. Close the gate when done or cancelled.
//
// The sending task's duties:
//
//  1. Dial each downstream subtask on another worker, DialLocal each one on
//     the same worker (no encoding, same credit semantics).
//  2. Write elements. A Sender batches records and sends a frame when the
//     batch reaches about 32 KiB or 256 records, and immediately for every
//     other element. Write blocks while the channel has no credit; that time
//     is counted as backpressure.
//  3. Call TryFlush periodically (every FlushInterval, 10 ms by default) so a
//     lightly loaded channel does not hold records back.
//  4. Write end of stream, then Close: it waits until the receiver has taken
//     the stream. Close without end of stream aborts the channel, which the
//     receiver sees as a broken channel.
package exchange
