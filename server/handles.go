package main

import (
	"sync"

	"finesse-relay/gadget"
	"finesse-relay/server/cluster"
	"finesse-relay/server/rest"
)

// handles keeps the concrete values main built for each agent's Session —
// its browser stream and its REST client — so the sign-in layer and the
// REST proxy reach them without asking the agent core for its interfaces
// back (no downcasts). The newest Session of an agent replaces the
// previous one's handles; a Session that ends leaves its ended stream,
// which refuses new connections with 410.
type handles struct {
	mu      sync.Mutex
	streams map[string]*gadget.Stream
	rests   map[string]*rest.Client
}

func newHandles() *handles {
	return &handles{streams: make(map[string]*gadget.Stream), rests: make(map[string]*rest.Client)}
}

func (h *handles) setStream(loginID string, s *gadget.Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams[loginID] = s
}

func (h *handles) setREST(loginID string, c *rest.Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rests[loginID] = c
}

func (h *handles) stream(loginID string) (*gadget.Stream, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.streams[loginID]
	return s, ok
}

func (h *handles) rest(loginID string) (*rest.Client, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.rests[loginID]
	return c, ok
}

// endedStream is the agent.Publisher main gives a Session: the gadget
// Stream, whose End also drops the agent's handles when they still belong
// to this Session (a newer Session of the agent may have replaced them).
type endedStream struct {
	*gadget.Stream
	h       *handles
	loginID string
	cl      *cluster.Cluster // nil on one instance
	// continued: the stream goes on from another instance's (adopted).
	continued bool
}

// Continued reports whether the stream goes on from another instance's.
func (e endedStream) Continued() bool { return e.continued }

// End ends the stream and forgets the Session's handles (and, with
// several instances, gives the agent's lease back).
func (e endedStream) End(reason string) {
	e.Stream.End(reason)
	if e.cl != nil {
		e.cl.Ended(e.loginID, e.Stream)
	}
	e.h.mu.Lock()
	defer e.h.mu.Unlock()
	if e.h.streams[e.loginID] == e.Stream {
		delete(e.h.streams, e.loginID)
		delete(e.h.rests, e.loginID)
	}
}
