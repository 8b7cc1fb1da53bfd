// Package xmppd is the simulator's Finesse Notification Service: an XMPP
// server that behaves like the subset of Openfire that Cisco Finesse
// uses, built on the server side of mellium.im/xmpp.
//
// It offers XMPP over TCP with mandatory STARTTLS (Serve with
// ModeSTARTTLS), direct TLS (ModeTLS), already-secure streams such as BOSH
// sessions (ModeSecure), and RFC 7395 WebSocket (WebSocketHandler). Every
// stream negotiates SASL PLAIN (Config.Authenticate checks the loginId
// and password or token) and binds a resource: the one the client asks
// for, or a random one; binding a full JID that is already bound replaces
// the older session with a conflict stream error.
//
// Publish turns a Finesse <Update> document into the pubsub event message
// Finesse sends (the Update escaped inside <notification>, F.1 of the
// protocol reference) and queues it for every session that should get it:
// the user's own sessions for the default nodes (User, Dialogs, Media,
// Queues), everyone for SystemInfo, and the explicit XEP-0060
// subscriptions for other nodes, such as Team/{id}/Users. Only sessions
// that sent available presence with priority >= 0 receive events.
// Subscriptions are kept per JID and outlive sessions, as in Finesse.
// SetServiceAvailable sends the presence of the Finesse server user
// (finesse@Domain), and OnPresence reports users becoming available and
// unavailable, which drives the simulator's forced logout.
//
// Limits: client stanzas are bounded in size (Config.MaxStanzaSize) and
// depth; the handshake in time (HandshakeTimeout) and size; idle
// connections are dropped after PingTimeout; writes have a deadline
// (WriteTimeout); each connection's outbound queue is bounded (QueueSize)
// and a connection whose queue overflows is dropped; the number of
// connections (MaxConnections) and of stored subscriptions per user
// (MaxSubscriptions) are bounded.
//
// # Concurrency
//
// All Server methods are safe for concurrent use. Publish,
// SetServiceAvailable, DropAll, Available and Subscriptions never block on
// a client. Each connection has two goroutines: a reader (the goroutine
// Serve starts, or the WebSocket handler's goroutine) that negotiates the
// stream and handles stanzas, and a writer the reader starts and waits for,
// which alone writes after the handshake. Serve waits for the connections
// it accepted, and Close for every connection, so no goroutine outlives
// them. OnPresence calls are serialized, in the order of the presence
// changes; the callback must not call Close.
package xmppd
