package xmppd

import "errors"

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrConfig is wrapped by Serve (and logged by WebSocketHandler) when
	// the Config is unusable: no Domain, an invalid address, or no
	// TLSConfig for a mode that needs one.
	ErrConfig = errors.New("xmppd: invalid config")
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errors.New("xmppd: server closed")
	// ErrItemNotFound may be returned (wrapped) by Config.AuthorizeSubscribe
	// for a node that does not exist; the client gets item-not-found
	// instead of forbidden.
	ErrItemNotFound = errors.New("xmppd: node not found")
	// ErrForbidden may be returned by Config.AuthorizeSubscribe to refuse a
	// subscription (any error other than ErrItemNotFound refuses too).
	ErrForbidden = errors.New("xmppd: forbidden")

	// errStanzaTooLarge ends a stream whose stanza (or handshake) exceeds
	// Config.MaxStanzaSize.
	errStanzaTooLarge = errors.New("xmppd: stanza exceeds size limit")
	// errTooDeep ends a stream whose stanza nests deeper than maxDepth.
	errTooDeep = errors.New("xmppd: stanza nests too deep")
	// errNotBound ends a session whose resource binding failed.
	errNotBound = errors.New("xmppd: resource binding failed")
)
