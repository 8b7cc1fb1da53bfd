package sim

import (
	"fmt"
	"math"
	"time"

	"finesse-relay/xmpp/finesse"
)

// maxWaiting is how many calls may wait in all queues together before the
// generator (and PlaceCall) refuse more: callers get a busy tone.
const maxWaiting = 200

// generatedCall is one draw of the call generator.
type generatedCall struct {
	Gap   time.Duration // wait before this call arrives
	Queue string
	From  string
	Vars  []finesse.CallVariable
}

var (
	customerTiers = []string{"Bronze", "Silver", "Gold", "Platinum"}
	callReasons   = []string{"Billing question", "New order", "Technical issue", "Address change", "Cancel subscription", "Delivery status"}
)

// nextCall draws the next generated call. Only the generator's source is
// used, so the sequence depends on the seed alone, not on timing or on
// what agents do.
func (m *model) nextCall() generatedCall {
	r := m.callRand
	mean := float64(m.t.callInterval)
	gap := time.Duration(math.Min(r.ExpFloat64()*mean, 10*mean))
	q := castQueues[0].id
	if r.IntN(10) >= 6 {
		q = castQueues[1].id
	}
	return generatedCall{
		Gap:   gap,
		Queue: q,
		From:  fmt.Sprintf("555%07d", r.IntN(10_000_000)),
		Vars: []finesse.CallVariable{
			{Name: "callVariable1", Value: fmt.Sprintf("ACC-%06d", r.IntN(1_000_000))},
			{Name: "callVariable2", Value: callReasons[r.IntN(len(callReasons))]},
			{Name: "user.CustomerTier", Value: customerTiers[r.IntN(len(customerTiers))]},
		},
	}
}

// scheduleGenerator arranges the next generated call.
func (m *model) scheduleGenerator() {
	if m.t.callInterval <= 0 {
		return
	}
	c := m.nextCall()
	m.genTimer = m.tmr.after(c.Gap, func() {
		m.genTimer = nil
		if m.waiting() < maxWaiting {
			m.placeCall(m.queue(c.Queue), c.From, c.Vars)
		}
		m.scheduleGenerator()
	})
}

func (m *model) waiting() int {
	n := 0
	for _, q := range m.queues {
		n += len(q.waiting)
	}
	return n
}
