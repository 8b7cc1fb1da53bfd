package wire

import "errors"

// ErrMalformed reports input that is not a well-formed XMPP stream item or
// <body/> wrapper, or that exceeds a limit (element depth, a duration over
// MaxSeconds). Errors returned by this package wrap it; callers wrap it in
// their own protocol error.
var ErrMalformed = errors.New("wire: malformed input")
