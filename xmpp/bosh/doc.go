// Package bosh carries an XMPP client stream over BOSH (XEP-0124 with the
// XMPP binding of XEP-0206), the HTTP long-polling transport that Finesse's
// Notification Service offers at https://<fqdn>:7443/http-bind.
//
// mellium.im/xmpp has no BOSH support, so Dial returns a net.Conn adapter:
// the ordinary mellium stream code runs over it unchanged. Write receives the
// byte stream the client writes and turns it into requests: the first
// <stream:stream> is the session Dial already created, stanzas become <body/>
// payloads, the stream header written after SASL success becomes a
// xmpp:restart='true' request and </stream:stream> becomes type='terminate'.
// Read yields a synthesized stream: a header with the server's from and
// stream id, then the payloads of the responses in rid order
// (<stream:features>, stanzas) and </stream:stream> when the session ends.
//
// BOSH runs over HTTPS, so the stream is already secure; tell mellium so,
// otherwise it refuses SASL:
//
//	conn, err := bosh.Dial(ctx, bosh.Config{URL: url, Domain: domain, TLSConfig: tlsCfg})
//	…
//	sess, err := xmpp.NewSession(ctx, j.Domain(), j, conn, xmpp.Secure,
//		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
//			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
//				xmpp.SASL("", password, sasl.Plain), xmpp.BindResource()}}
//		}))
//
// Protocol behaviour: hold long-polls are kept outstanding (default 1), never
// more than 'requests' requests are in flight, rids grow by one per request
// and responses are delivered in rid order whatever order they arrive in. The
// server's wait, hold, requests and polling are honoured; an empty poll that
// came back empty is not followed by another one sooner than 'polling'. The
// client never pauses (maxpause is only reported by Params). A request that
// fails at the network level (no HTTP answer, or 502/503/504 from a proxy)
// is retransmitted with the same rid and body up to three times, 250 ms,
// 500 ms and 1 s apart (XEP-0124 §14). type='terminate' with a condition,
// type='error', and HTTP 400/403/404/… end the session with a
// *TerminateError.
//
// Limits: every response body and every request payload is at most
// MaxBodySize (1 MiB); while MaxReadBuffer (4 MiB) of received data is not yet
// read no new long-poll is sent; Write blocks while MaxBodySize bytes wait to
// be sent; elements nest at most 256 deep; each request may take at most
// wait + 10 s.
//
// # Concurrency
//
// A Conn may be used by one reader and one writer at the same time (as
// mellium does); Close and the Set*Deadline methods may be called from any
// goroutine. The Conn owns one goroutine per HTTP request in flight (at most
// 'requests', normally 2) and a polling timer; they are started by Dial,
// Write and arriving responses, and Close cancels them and waits until every
// one has returned. Close first sends type='terminate' and waits for its
// answer at most CloseTimeout (2 s). If the Conn built its own HTTP client,
// Close also closes the client's idle connections.
package bosh
