package gadget

import (
	"time"

	"go.uber.org/zap"
)

// ReconciledEvent broadcasts an event the session core derived from a
// snapshot for a requestId whose own notification never arrived (Finesse
// accepted the request while the relay's upstream session was down, during
// a reconnect or a failover):
// {"type":"event","seq":N,"node","event":"PUT","source":node,"requestId",
// "reconciled":true,"data"}. data is the node's full state after the
// snapshot (the shape of a state message's data for that node); it is not
// stored as the node's snapshot state (the snapshot's State call did that).
// Like Event, it never blocks and is dropped after End.
func (s *Stream) ReconciledEvent(node, requestID string, data any) {
	e := s.encoders.Get().(*encoder)
	e.buf.Reset()
	e.buf.Write(appendReconciledTail(e.buf.AvailableBuffer(), node, requestID))
	if err := e.appendData(data); err != nil {
		s.log.Error("reconciled event data cannot be marshalled; sending null", zap.String("node", node), zap.Error(err))
	}
	e.buf.WriteByte('}')
	s.broadcastEvent(time.Time{}, node, e.buf.Bytes(), nil, nil)
	s.putEncoder(e)
}
