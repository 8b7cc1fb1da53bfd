// Package sim is the embedded Cisco Finesse simulator used by the demo and
// by tests: two Finesse nodes (side A, the primary, and side B, the
// secondary) that share one CTI model of agents, calls and queues, each
// with the Finesse REST API (/finesse/api/), a Notification Service
// (subpackage xmppd: XMPP with STARTTLS, direct TLS, WebSocket at /ws and
// BOSH at /http-bind through subpackage boshd), plus a simulated Cisco
// Identity Service (subpackage idsd) and a small JSON control API for
// faults and calls.
//
// It behaves like Finesse rather than like a convenient fake: a
// state-changing REST request answers 202 with a requestId header, the
// change happens a few milliseconds later (the CTI round trip), and the
// resulting notifications carry the same requestId; errors are ApiErrors
// XML (synchronous) or apiErrors notifications (asynchronous CTI
// failures); notifications are <Update> documents built with
// finesse-relay/xmpp/finesse and delivered escaped in XEP-0060 events; a
// signed-in user without an available XMPP session on either side is
// logged out with reason code 255 after Config.ForcedLogoutDelay.
//
// The cast is fixed (DESIGN.md): agents 1001 upward in team 10 "Support",
// supervisor 2001, queues 5001 "Sales" and 5002 "Support", extension "5"
// followed by the login id, password "demo". With Config.Robots every agent
// but 1001 is driven by a robot, and a seeded generator places inbound
// calls; Config.Seed makes the generated call sequence reproducible.
//
// # Concurrency
//
// One mutex guards the whole model (users, dialogs, queues, timers). REST
// handlers, XMPP callbacks, timer callbacks and the Go API take it for the
// duration of one operation. Timers are time.AfterFunc callbacks that run
// holding the mutex; Run stops them all and waits for running ones before
// it returns. Notifications are never sent under the mutex: the model
// appends them, in order, to an outbox that one publisher goroutine
// (owned by Run) drains into both sides' xmppd servers, so an XMPP
// callback can never deadlock against a publication. Every goroutine Sim
// starts (HTTP servers, XMPP listeners, the publisher) belongs to Run's
// errgroup. All exported methods of *Sim are safe for concurrent use; Run
// must be called once.
package sim
