package finesse

import "errors"

// Sentinel errors. Every error this package returns wraps one of them, so
// callers branch with errors.Is; the message says what was wrong and where.
var (
	// ErrMalformedUpdate is returned (wrapped) for a payload that is not a
	// Finesse <Update> document or notification.
	ErrMalformedUpdate = errors.New("finesse: malformed Update")

	// ErrMalformedData is returned (wrapped) for an object document (the
	// content of <data>, or a REST body) that is not well-formed XML, has
	// the wrong root element for the Parse function called, or holds a value
	// of the wrong type (a non-integer statistic, a non-boolean flag).
	ErrMalformedData = errors.New("finesse: malformed data")

	// ErrLimit is returned (wrapped, together with ErrMalformedUpdate or
	// ErrMalformedData) when input exceeds MaxUpdateSize,
	// MaxNotificationSize, MaxDepth or MaxElements.
	ErrLimit = errors.New("finesse: limit exceeded")

	// ErrUnknownNode is returned (wrapped) by ParseNode for a path that is
	// not one of the Finesse node or resource paths this package knows.
	ErrUnknownNode = errors.New("finesse: unknown node")
)

// Limits on input. They bound memory and CPU for hostile or broken input;
// real Finesse payloads are a few kilobytes.
const (
	// MaxUpdateSize is the largest <Update> document ParseUpdate accepts,
	// and the largest object document DecodeData and the Parse functions
	// accept.
	MaxUpdateSize = 1 << 20

	// MaxNotificationSize is the largest <notification> content
	// ParseNotification accepts. Escaping makes the wire form up to four
	// times longer than the <Update> it carries; the unescaped document
	// must still fit MaxUpdateSize.
	MaxNotificationSize = 4 * MaxUpdateSize

	// MaxDepth is the deepest element nesting accepted, counting the root
	// element as 1. Finesse's deepest documents nest 8 deep (Update, data,
	// dialogs, Dialog, participants, Participant, actions, action).
	MaxDepth = 64

	// MaxElements is the largest number of elements one object document
	// may hold (a team of 500 users is about 10,000).
	MaxElements = 50_000
)
