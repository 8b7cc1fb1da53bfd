// Package boshd is the simulator's BOSH connection manager (XEP-0124 with
// the XMPP binding of XEP-0206), the stand-in for Finesse's
// https://<fqdn>:7443/http-bind.
//
// A *Server is both an http.Handler (mount it at /http-bind; POST only, no
// CORS) and a net.Listener: each BOSH session becomes one net.Conn returned
// by Accept, carrying an ordinary XMPP client stream, so the simulator's XMPP
// server accepts from it exactly as from a TCP listener. BOSH runs over
// HTTPS, so the XMPP server must treat that stream as already secure (with
// mellium: xmpp.ReceiveSession(ctx, conn, xmpp.Secure, negotiator)).
//
// Inside, a session is a net.Pipe. At session creation the server side
// receives a synthesized <stream:stream to=domain xmlns='jabber:client' …
// version='1.0'> header; the XMPP server's answer is parsed: its stream
// header gives the session's from and authid, every top-level element
// (<stream:features/>, stanzas) is queued and delivered in the next response
// body (the creation response waits for the header), xmpp:restart='true'
// writes a new stream header to the server side, </stream:stream> (or a
// closed conn) from the XMPP server becomes type='terminate' (a
// <stream:error/> becomes condition remote-stream-error, a conn closed
// without </stream:stream> remote-connection-failed), and type='terminate'
// from the client writes its payload and </stream:stream> to the XMPP server,
// which gets 2 s to close its side before the pipe is closed.
//
// Rules enforced: hold (extra held requests are answered at once, oldest
// first), wait (a held request is answered empty when it passes), requests
// (rids must lie in lastRID+1 … lastRID+requests; a request ahead of a
// missing one waits up to wait for it; outside the window: terminate
// item-not-found), a repeated rid gets the cached response (or takes over
// the held request it repeats), an unknown sid gets item-not-found, a wrong
// 'to' host-unknown, a malformed body HTTP 400 bad-request, a body larger
// than MaxBodySize HTTP 413 policy-violation; a session with no request held
// for Inactivity is closed. Pause requests are ignored. Each direction of a
// session buffers at most 4 × MaxBodySize: a client that outpaces the XMPP
// server is terminated with policy-violation, an XMPP server that outpaces
// the client is blocked on its writes.
//
// # Concurrency
//
// All methods are safe for concurrent use. New starts no goroutine. Each
// session owns two goroutines, started at session creation: a reader (XMPP
// server → response queue) and a writer (request payloads → XMPP server).
// Both end when the session's pipe is closed: when the session terminates,
// expires, or when Server.Close is called; Close waits for all of them. Held
// requests run on the HTTP server's goroutines and are answered (with
// system-shutdown) by Close; the HTTP server itself is not owned by Server.
package boshd
