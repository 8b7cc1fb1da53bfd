package finesse

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// SystemInfo is the state of a Finesse node: GET /finesse/api/SystemInfo
// and the data of notifications on the SystemInfo node. Usable says
// whether a client may work on the node (IN_SERVICE and not in
// maintenance); InMaintenance says whether Finesse is moving its agents to
// the other node.
//
// The CTI and maintenance fields come from Cisco's SystemInfo API
// parameters (developer.cisco.com/docs/finesse/systeminfo-api-parameters);
// releases before 12.6 send fewer of them, and an element Finesse did not
// send is the zero value.
type SystemInfo struct {
	CurrentTimestamp string `xml:"currentTimestamp,omitempty" json:"currentTimestamp"`
	DeploymentType   string `xml:"deploymentType" json:"deploymentType"` // UCCE, UCCX
	// LastCTIHeartbeatStatus is the outcome of the last CTI heartbeat
	// (success, failure).
	LastCTIHeartbeatStatus string `xml:"lastCTIHeartbeatStatus,omitempty" json:"lastCTIHeartbeatStatus"`
	// LastSuccessCTIHeartbeatTime is when the last heartbeat succeeded,
	// kept as sent (Cisco documents an integer; captures show epoch
	// milliseconds).
	LastSuccessCTIHeartbeatTime string `xml:"lastSuccessCTIHeartbeatTime,omitempty" json:"lastSuccessCTIHeartbeatTime"`
	CTIVersion                  int    `xml:"ctiVersion,omitempty" json:"ctiVersion"`                     // CTI protocol version
	CTIHeartbeatInterval        int    `xml:"ctiHeartbeatInterval,omitempty" json:"ctiHeartbeatInterval"` // seconds
	// CTIMMode is the CTI server's maintenance mode (UCCE 12.6+):
	// INITIATING, IN_PROGRESS, or "" when none. Finesse then connects to the
	// standby CTI server; the Finesse node itself stays in use.
	CTIMMode string `xml:"ctiMMode,omitempty" json:"ctiMMode"`
	// CTITimeInMMode is how long (s) the CTI server has been in
	// maintenance; negative when it is not.
	CTITimeInMMode int `xml:"ctiTimeInMMode,omitempty" json:"ctiTimeInMMode"`
	// FinesseMMode is this Finesse node's maintenance mode: "" (none),
	// IN_PROGRESS (agents are being moved to the other node), COMPLETED
	// (they were; the services are shut down), FAILED (the move did not
	// complete in time).
	FinesseMMode string `xml:"finesseMMode,omitempty" json:"finesseMMode"`
	// FinesseTimeInMMode is how long (s) the node has been in
	// maintenance; negative when it is not.
	FinesseTimeInMMode int         `xml:"finesseTimeInMMode,omitempty" json:"finesseTimeInMMode"`
	License            string      `xml:"license,omitempty" json:"license"`
	PeripheralID       string      `xml:"peripheralId,omitempty" json:"peripheralId"`
	PrimaryNode        *ServerNode `xml:"primaryNode,omitempty" json:"primaryNode,omitempty"`     // side A
	SecondaryNode      *ServerNode `xml:"secondaryNode,omitempty" json:"secondaryNode,omitempty"` // side B, nil on a single-node system
	Status             string      `xml:"status" json:"status"`                                   // IN_SERVICE, OUT_OF_SERVICE, PARTIAL_SERVICE
	StatusReason       string      `xml:"statusReason,omitempty" json:"statusReason"`
	SystemAuthMode     string      `xml:"systemAuthMode,omitempty" json:"systemAuthMode"` // SSO, NON_SSO, HYBRID
	TimezoneOffset     string      `xml:"timezoneOffset,omitempty" json:"timezoneOffset"`
	URI                string      `xml:"uri" json:"uri"`
	XMPPDomain         string      `xml:"xmppDomain" json:"xmppDomain"`
	XMPPPubSubDomain   string      `xml:"xmppPubSubDomain" json:"xmppPubSubDomain"`
	// CTIServers are the CTI servers the node knows (12.6+).
	CTIServers []CTIServer `xml:"ctiServers>ctiServer,omitempty" json:"ctiServers,omitempty"`
	Extra      []Raw       `xml:",any" json:"extra,omitempty"`
}

// ServerNode is one Finesse server of a SystemInfo. Ports are 0 when
// Finesse does not report them (releases before 12.6).
type ServerNode struct {
	Host           string `xml:"host" json:"host"`
	HTTPSPort      int    `xml:"httpsPort,omitempty" json:"httpsPort"`
	XMPPPort       int    `xml:"xmppPort,omitempty" json:"xmppPort"`
	XMPPSecurePort int    `xml:"xmppSecurePort,omitempty" json:"xmppSecurePort"`
	Extra          []Raw  `xml:",any" json:"extra,omitempty"`
}

// CTIServer is one CTI server of a SystemInfo: whether the node is
// connected to it now (Active) and for how long.
type CTIServer struct {
	Host              string `xml:"host" json:"host"`
	ConnectedDuration int    `xml:"connectedDuration" json:"connectedDuration"`
	Active            bool   `xml:"active" json:"active"`
	Extra             []Raw  `xml:",any" json:"extra,omitempty"`
}

// Kind returns KindSystemInfo.
func (*SystemInfo) Kind() string { return KindSystemInfo }

// InMaintenance reports whether this Finesse node is in maintenance mode:
// FinesseMMode is IN_PROGRESS (Finesse is moving every agent to the other
// node) or COMPLETED (it has, and its services are shut down). Either way
// a client must sign in on the other node, as it would on OUT_OF_SERVICE.
// FAILED (the move did not finish in time) and "" are not maintenance: the
// node's Status rules. A CTI server in maintenance (CTIMMode) is not the
// node's: Finesse fails over to the standby CTI server and reports the
// outage, if any, in Status.
func (s *SystemInfo) InMaintenance() bool {
	return strings.EqualFold(s.FinesseMMode, "IN_PROGRESS") || strings.EqualFold(s.FinesseMMode, "COMPLETED")
}

// Usable reports whether a client may work on this node, per Finesse's
// availability rules: Status is IN_SERVICE and the node is not in
// maintenance (InMaintenance). PARTIAL_SERVICE and OUT_OF_SERVICE nodes
// answer 503 to desktop requests.
func (s *SystemInfo) Usable() bool {
	return strings.EqualFold(s.Status, "IN_SERVICE") && !s.InMaintenance()
}

// UnmarshalXML decodes a SystemInfo element of any letter case.
func (s *SystemInfo) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, s.decode)
}

func (s *SystemInfo) decode(e *elem) error {
	*s = SystemInfo{}
	for c := e.child; c != nil; c = c.next {
		var err error
		switch c.key {
		case "currenttimestamp":
			s.CurrentTimestamp = c.text
		case "deploymenttype":
			s.DeploymentType = c.text
		case "lastctiheartbeatstatus":
			s.LastCTIHeartbeatStatus = c.text
		case "lastsuccessctiheartbeattime":
			s.LastSuccessCTIHeartbeatTime = c.text
		case "ctiversion":
			s.CTIVersion, err = parseInt(c)
		case "ctiheartbeatinterval":
			s.CTIHeartbeatInterval, err = parseInt(c)
		case "ctimmode":
			s.CTIMMode = c.text
		case "ctitimeinmmode":
			s.CTITimeInMMode, err = parseInt(c)
		case "finessemmode":
			s.FinesseMMode = c.text
		case "finessetimeinmmode":
			s.FinesseTimeInMMode, err = parseInt(c)
		case "license":
			s.License = c.text
		case "peripheralid":
			s.PeripheralID = c.text
		case "primarynode", "secondarynode":
			n := new(ServerNode)
			err = n.decode(c)
			if c.key == "primarynode" {
				s.PrimaryNode = n
			} else {
				s.SecondaryNode = n
			}
		case "status":
			s.Status = c.text
		case "statusreason":
			s.StatusReason = c.text
		case "systemauthmode":
			s.SystemAuthMode = c.text
		case "timezoneoffset":
			s.TimezoneOffset = c.text
		case "uri":
			s.URI = c.text
		case "xmppdomain":
			s.XMPPDomain = c.text
		case "xmpppubsubdomain":
			s.XMPPPubSubDomain = c.text
		case "ctiservers":
			s.CTIServers = nil
			for m := c.child; m != nil && err == nil; m = m.next {
				var cs CTIServer
				err = cs.decode(m)
				s.CTIServers = append(s.CTIServers, cs)
			}
		default:
			s.Extra = append(s.Extra, rawOf(c))
		}
		if err != nil {
			return fmt.Errorf("<%s>: %w", e.name, err)
		}
	}
	return nil
}

func (n *ServerNode) decode(e *elem) error {
	var err error
	for c := e.child; c != nil; c = c.next {
		switch c.key {
		case "host":
			n.Host = c.text
		case "httpsport":
			n.HTTPSPort, err = parseInt(c)
		case "xmppport":
			n.XMPPPort, err = parseInt(c)
		case "xmppsecureport":
			n.XMPPSecurePort, err = parseInt(c)
		default:
			n.Extra = append(n.Extra, rawOf(c))
		}
		if err != nil {
			return fmt.Errorf("<%s>: %w", e.name, err)
		}
	}
	return nil
}

func (cs *CTIServer) decode(e *elem) error {
	var err error
	for c := e.child; c != nil; c = c.next {
		switch c.key {
		case "host":
			cs.Host = c.text
		case "connectedduration":
			cs.ConnectedDuration, err = parseInt(c)
		case "active":
			cs.Active, err = parseBool(c)
		default:
			cs.Extra = append(cs.Extra, rawOf(c))
		}
		if err != nil {
			return fmt.Errorf("<%s>: %w", e.name, err)
		}
	}
	return nil
}
