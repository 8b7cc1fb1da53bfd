package finesse

import (
	"encoding/xml"
	"fmt"
)

// SystemInfo is the state of a Finesse node: GET /finesse/api/SystemInfo
// and the data of notifications on the SystemInfo node. A node is usable
// only while Status is IN_SERVICE.
type SystemInfo struct {
	Status           string      `xml:"status" json:"status"` // IN_SERVICE, OUT_OF_SERVICE, PARTIAL_SERVICE
	StatusReason     string      `xml:"statusReason,omitempty" json:"statusReason"`
	DeploymentType   string      `xml:"deploymentType" json:"deploymentType"`           // UCCE, UCCX
	SystemAuthMode   string      `xml:"systemAuthMode,omitempty" json:"systemAuthMode"` // SSO, NON_SSO, HYBRID
	XMPPDomain       string      `xml:"xmppDomain" json:"xmppDomain"`
	XMPPPubSubDomain string      `xml:"xmppPubSubDomain" json:"xmppPubSubDomain"`
	PrimaryNode      *ServerNode `xml:"primaryNode,omitempty" json:"primaryNode,omitempty"`     // side A
	SecondaryNode    *ServerNode `xml:"secondaryNode,omitempty" json:"secondaryNode,omitempty"` // side B, nil on a single-node system
	CurrentTimestamp string      `xml:"currentTimestamp,omitempty" json:"currentTimestamp"`
	TimezoneOffset   string      `xml:"timezoneOffset,omitempty" json:"timezoneOffset"`
	URI              string      `xml:"uri" json:"uri"`
}

// ServerNode is one Finesse server of a SystemInfo. Ports are 0 when
// Finesse does not report them (releases before 12.6).
type ServerNode struct {
	Host           string `xml:"host" json:"host"`
	HTTPSPort      int    `xml:"httpsPort,omitempty" json:"httpsPort"`
	XMPPPort       int    `xml:"xmppPort,omitempty" json:"xmppPort"`
	XMPPSecurePort int    `xml:"xmppSecurePort,omitempty" json:"xmppSecurePort"`
}

// Kind returns KindSystemInfo.
func (*SystemInfo) Kind() string { return KindSystemInfo }

// UnmarshalXML decodes a SystemInfo element of any letter case.
func (s *SystemInfo) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return unmarshalTree(d, start, s.decode)
}

func (s *SystemInfo) decode(e *elem) error {
	*s = SystemInfo{}
	for c := e.child; c != nil; c = c.next {
		switch c.key {
		case "status":
			s.Status = c.text
		case "statusreason":
			s.StatusReason = c.text
		case "deploymenttype":
			s.DeploymentType = c.text
		case "systemauthmode":
			s.SystemAuthMode = c.text
		case "xmppdomain":
			s.XMPPDomain = c.text
		case "xmpppubsubdomain":
			s.XMPPPubSubDomain = c.text
		case "primarynode", "secondarynode":
			n := new(ServerNode)
			if err := n.decode(c); err != nil {
				return fmt.Errorf("<%s>: %w", e.name, err)
			}
			if c.key == "primarynode" {
				s.PrimaryNode = n
			} else {
				s.SecondaryNode = n
			}
		case "currenttimestamp":
			s.CurrentTimestamp = c.text
		case "timezoneoffset":
			s.TimezoneOffset = c.text
		case "uri":
			s.URI = c.text
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
		}
		if err != nil {
			return fmt.Errorf("<%s>: %w", e.name, err)
		}
	}
	return nil
}
