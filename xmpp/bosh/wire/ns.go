package wire

// Namespaces of XEP-0124, XEP-0206 and RFC 6120.
const (
	// NSHTTPBind is the namespace of the <body/> wrapper (XEP-0124).
	NSHTTPBind = "http://jabber.org/protocol/httpbind"
	// NSXBOSH is the namespace of the xmpp:restart and xmpp:version
	// attributes of <body/> (XEP-0206).
	NSXBOSH = "urn:xmpp:xbosh"
	// NSStream is the namespace of <stream:stream> and its children
	// (RFC 6120).
	NSStream = "http://etherx.jabber.org/streams"
	// NSClient is the default namespace of a client stream (RFC 6120).
	NSClient = "jabber:client"
)
