// Package gadget is the relay's browser side: the WebSocket gateway, the
// JSON wire protocol, sequence numbers, the resume ring, single-use tickets
// and per-connection bounded queues. It knows nothing of Finesse: the data
// it relays is any value that marshals to JSON.
//
// A Stream is one agent session's outbound channel. The session core calls
// Event, State and Status; the Stream numbers each message (seq, from 0),
// encodes it once, keeps it in a ring of the last RingSize messages, keeps
// the current state of every node for snapshots, and offers it to every
// attached connection's queue. Tickets binds short-lived single-use tickets
// to a Stream and a relay session (one browser sign-in), at most
// MaxPerSession outstanding per session; the Gateway (an http.Handler for
// GET /ws) redeems a ticket through any TicketRedeemer, caps the sockets of
// each relay session (CloseSession closes them at sign-out), upgrades, and
// attaches the connection: first a welcome, then either a
// snapshot (one state per node, then the latest status) or a replay of the
// ring after the client's since, then live messages. The protocol is
// documented in the README ("The browser protocol").
//
// # Back-pressure
//
// Nothing blocks the session core. Each connection has a bounded queue
// (QueueSize live messages); when it is full the connection is closed with
// 4000 (queue_overflow) and the Stream and the other connections carry on.
// The client reconnects and resumes from the ring. The initial batch
// (welcome plus snapshot or replay, up to RingSize messages) does not count
// against the queue.
//
// # Concurrency
//
// Stream, Tickets, Gateway and Metrics are safe for concurrent use. A
// Stream has one mutex; under it seqs are assigned, the ring and the state
// map are updated and frames are appended to the connections' queues (each
// with its own small mutex), so a joining connection captures its snapshot
// or replay and starts receiving live messages atomically: nothing is
// missed or duplicated. JSON marshalling of event data happens before the
// lock; lazy marshalling of snapshot state happens under it. OnSubscribers
// is called outside that lock, serialized by a second one.
//
// Each connection has exactly two goroutines: the reader (the ServeHTTP
// goroutine, which executes commands) and one writer started by it, which
// owns every data write and the pings. Either side ends the connection by
// recording a close code once; the writer then sends the close frame
// (after flushing the queue when the Stream ended), waits up to a second
// for the peer's close, and closes the socket. ServeHTTP returns only after
// the writer has returned. Gateway.Shutdown closes every connection with
// 1001 and waits for the handlers, bounded by its context.
package gadget
