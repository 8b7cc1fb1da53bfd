package finesse

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// Queue is a queue (UCCE only): GET /finesse/api/Queue/{id}, the data of
// statistics notifications on the Queue/{id} node (every 10 s if changed),
// and a member of Queues. Finesse identifies a queue by its URI; when the
// document has no <id> element, ID is the URI's last segment.
type Queue struct {
	URI        string           `xml:"uri" json:"uri"`
	ID         string           `xml:"id,omitempty" json:"id"`
	Name       string           `xml:"name" json:"name"`
	Statistics *QueueStatistics `xml:"statistics,omitempty" json:"statistics,omitempty"`
	Extra      []Raw            `xml:",any" json:"extra,omitempty"`
}

// QueueStatistics are a queue's live figures. Finesse reports -1 for
// queues not assigned to the user asking.
type QueueStatistics struct {
	CallsInQueue                  int    `xml:"callsInQueue" json:"callsInQueue"`
	StartTimeOfLongestCallInQueue string `xml:"startTimeOfLongestCallInQueue" json:"startTimeOfLongestCallInQueue"` // ISO 8601, empty when no call waits
	AgentsReady                   int    `xml:"agentsReady" json:"agentsReady"`
	AgentsNotReady                int    `xml:"agentsNotReady" json:"agentsNotReady"`
	AgentsBusyOther               int    `xml:"agentsBusyOther" json:"agentsBusyOther"`
	AgentsLoggedOn                int    `xml:"agentsLoggedOn" json:"agentsLoggedOn"`
	AgentsTalkingInbound          int    `xml:"agentsTalkingInbound" json:"agentsTalkingInbound"`
	AgentsTalkingOutbound         int    `xml:"agentsTalkingOutbound" json:"agentsTalkingOutbound"`
	AgentsTalkingInternal         int    `xml:"agentsTalkingInternal" json:"agentsTalkingInternal"`
	AgentsWrapUpNotReady          int    `xml:"agentsWrapUpNotReady" json:"agentsWrapUpNotReady"`
	AgentsWrapUpReady             int    `xml:"agentsWrapUpReady" json:"agentsWrapUpReady"`
	Extra                         []Raw  `xml:",any" json:"extra,omitempty"`
}

// Queues is a list of queues: GET /finesse/api/User/{id}/Queues and a
// collection add or remove on the User/{id}/Queues node.
type Queues struct {
	Queues []Queue `xml:"Queue" json:"queues"`
}

// Kind returns KindQueue.
func (*Queue) Kind() string { return KindQueue }

// Kind returns KindQueues.
func (*Queues) Kind() string { return KindQueues }

// MarshalJSON writes queues as an array, [] when empty.
func (l Queues) MarshalJSON() ([]byte, error) {
	type plain Queues
	if l.Queues == nil {
		l.Queues = []Queue{}
	}
	return marshalJSON(plain(l))
}

// UnmarshalXML decodes a queue element of any letter case.
func (q *Queue) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, q.decode)
}

// UnmarshalXML decodes a queue list of any letter case.
func (l *Queues) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, l.decode)
}

func (q *Queue) decode(e *elem) error {
	*q = Queue{}
	for c := e.child; c != nil; c = c.next {
		switch c.key {
		case "uri":
			q.URI = c.text
		case "id":
			q.ID = c.text
		case "name":
			q.Name = c.text
		case "statistics":
			q.Statistics = new(QueueStatistics)
			if err := q.Statistics.decode(c); err != nil {
				return fmt.Errorf("<%s>: %w", e.name, err)
			}
		default:
			q.Extra = append(q.Extra, rawOf(c))
		}
	}
	if q.ID == "" {
		uri := strings.TrimRight(q.URI, "/")
		if i := strings.LastIndexByte(uri, '/'); i >= 0 {
			q.ID = uri[i+1:]
		}
	}
	return nil
}

func (s *QueueStatistics) decode(e *elem) error {
	*s = QueueStatistics{}
	for c := e.child; c != nil; c = c.next {
		var p *int
		switch c.key {
		case "starttimeoflongestcallinqueue":
			s.StartTimeOfLongestCallInQueue = c.text
			continue
		case "callsinqueue":
			p = &s.CallsInQueue
		case "agentsready":
			p = &s.AgentsReady
		case "agentsnotready":
			p = &s.AgentsNotReady
		case "agentsbusyother":
			p = &s.AgentsBusyOther
		case "agentsloggedon":
			p = &s.AgentsLoggedOn
		case "agentstalkinginbound":
			p = &s.AgentsTalkingInbound
		case "agentstalkingoutbound":
			p = &s.AgentsTalkingOutbound
		case "agentstalkinginternal":
			p = &s.AgentsTalkingInternal
		case "agentswrapupnotready":
			p = &s.AgentsWrapUpNotReady
		case "agentswrapupready":
			p = &s.AgentsWrapUpReady
		default:
			s.Extra = append(s.Extra, rawOf(c))
			continue
		}
		n, err := parseInt(c)
		if err != nil {
			return fmt.Errorf("<%s>: %w", e.name, err)
		}
		*p = n
	}
	return nil
}

func (l *Queues) decode(e *elem) error {
	*l = Queues{}
	for c := e.child; c != nil; c = c.next {
		var q Queue
		if err := q.decode(c); err != nil {
			return err
		}
		l.Queues = append(l.Queues, q)
	}
	return nil
}
