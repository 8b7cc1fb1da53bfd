// Package wire holds the XML code that both ends of a BOSH session need: the
// client transport (xmpp/bosh) and the simulator's connection manager
// (server/sim/boshd). Its one job is to turn bytes into BOSH/XMPP items and
// back into bytes that stand on their own; it knows nothing of sessions,
// rids or HTTP.
//
// ScanItem splits an XMPP byte stream (written by a local, trusted encoder)
// into stream-level items: the stream header, whole top-level elements,
// whitespace, comments, processing instructions and the stream end. It does
// not validate the XML of a stanza; it only finds where each top-level element
// ends, so that whole elements can be placed into <body/> payloads.
// ParseStreamHeader reads a <stream:stream> start tag, and WithNamespaces
// declares on an element the namespaces it inherited from the stream header,
// so that it keeps its meaning inside <body/>.
//
// ParseBody parses one XEP-0124 <body/> wrapper (untrusted input from the
// network) with encoding/xml in strict mode and returns its attributes and
// its child elements, each serialized so that it can stand alone in an XMPP
// stream. Which attributes matter is left to the caller (a client reads sid,
// wait and hold of a response; a connection manager reads rid and to of a
// request).
//
// Limits: elements nest at most MaxDepth (256) levels, both in the scanner
// and in ParseBody; DTDs, entity declarations and processing instructions
// inside <body/> are refused; ParseSeconds accepts at most MaxSeconds (one
// day). Neither ScanItem nor ParseBody bounds the size of its input: callers
// do (both callers stop at their MaxBodySize). Errors wrap ErrMalformed.
//
// # Concurrency
//
// The package has no state: every function may be called from any number of
// goroutines at once. It starts no goroutines.
package wire
