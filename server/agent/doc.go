// Package agent is the relay's core: one Session per signed-in agent, owning
// the agent's credentials, one Finesse Notification Service connection, one
// REST view of Finesse and the browser-facing stream, and the Manager that
// keys sessions by loginId.
//
// A Session's goroutine connects (SystemInfo → XMPP with the freshest
// credential → supervisor subscriptions → snapshot GETs), relays every
// notification in order, reconnects with jittered backoff, and fails over to
// the other Finesse side when the current one is out of service, unreachable
// or its `finesse` service user goes away — never signed in on both sides at
// once. When its last browser connection leaves, the Session lives on for the
// grace period, then unsubscribes, sends unavailable presence and ends, so
// Finesse's own presence rule logs the agent out as it would for the desktop.
//
// The package depends only on xmpp/finesse. It defines the small interfaces it
// needs — Notifier (an XMPP session), Finesse (REST reads) and Publisher (the
// browser stream) — and the server wires concrete types to them.
//
// Concurrency: Manager and Session methods are safe for concurrent use. Each
// Session has exactly one goroutine, owned by the Manager, which Manager.Run
// waits for before returning. Notification callbacks run on the Notifier's
// goroutine and never block.
package agent
