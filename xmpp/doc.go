// Package xmpp is the relay's client of the Cisco Finesse Notification
// Service: one XMPP session per agent, on mellium.im/xmpp.
//
// Dial connects over one of four transports (TCP with STARTTLS, direct
// TLS, WebSocket per RFC 7395, BOSH through package xmpp/bosh), sends the
// agent's loginId and password or IdS access token with SASL PLAIN (only
// over an encrypted link), binds a named resource of our own (never
// "desktop", the Finesse desktop's) and announces presence with priority
// 0, without which Finesse delivers no events. Run then serves the
// session: it decodes every pubsub event into a finesse.Update, tracks the
// presence of the Finesse service user, answers the server's pings and
// pings the server (XEP-0199), and returns a *SessionError whose Reason
// says why the session ended. Subscribe, Unsubscribe, Subscriptions and
// PruneSubscriptions manage XEP-0060 subscriptions of the session's full
// JID. Close unsubscribes, sends unavailable presence and ends the stream.
// The package does not reconnect: the session manager does.
//
// Input is bounded: every top-level element the server sends is limited
// to Config.MaxStanzaSize bytes and Config.MaxDepth levels of nesting,
// counted on the byte stream before any XML decoding, and every write has
// a deadline (Config.WriteTimeout), so a hostile or broken server can make
// the client neither allocate without bound nor hang.
//
// # Concurrency
//
// Dial returns a Client whose methods are safe for concurrent use. Run
// must be called once; it blocks, and owns two goroutines (the stream
// reader and the pinger) that have stopped when it returns. OnUpdate and
// OnServicePresence are called on the stream reader's goroutine, one at a
// time and in stream order; they must return quickly and must not call
// the Client's methods, because no stanza (IQ answers included) is read
// while they run. Subscribe, Unsubscribe, Subscriptions and
// PruneSubscriptions wait for an answer that Run reads: call them while
// Run is running (calls made before Run starts wait for it); when the
// session ends they return at once with its *SessionError. Close may be
// called at any time from any goroutine, any number of times; it returns
// when the session is over and Run has returned (or would return at once).
package xmpp
