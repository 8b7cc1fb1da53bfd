package sim

import (
	"encoding/xml"
	"strings"
	"testing"
)

func FuzzParseUserRequest(f *testing.F) {
	f.Add([]byte(stateBody("LOGIN", "extension", "51001")))
	f.Add([]byte(stateBody("NOT_READY", "reasonCodeId", "12")))
	f.Add([]byte("<User><state>READY"))
	f.Add([]byte("<!DOCTYPE x [<!ENTITY a 'b'>]><User><state>&a;</state></User>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseUserRequest(body)
		if err != nil {
			return
		}
		if len(r.State)+len(r.ReasonCodeID)+len(r.Extension) > len(body) {
			t.Fatalf("fields longer than the body: %+v", r)
		}
		// What was parsed survives a round trip.
		b, err := xml.Marshal(userRequestXML(r))
		if err != nil {
			return // not representable in XML (invalid characters)
		}
		r2, err := parseUserRequest(b)
		if err != nil || r2 != r {
			t.Fatalf("round trip: %+v -> %s -> %+v (%v)", r, b, r2, err)
		}
	})
}

func FuzzParseDialogRequest(f *testing.F) {
	f.Add([]byte(actionBody("ANSWER", "51001")))
	f.Add([]byte(actionBody("SEND_DTMF", "51001", "<actionParams><ActionParam><name>dtmfString</name><value>12#</value></ActionParam></actionParams>")))
	f.Add([]byte("<Dialog><requestedAction>UPDATE_CALL_DATA</requestedAction><mediaProperties><wrapUpReason>x</wrapUpReason><callvariables><CallVariable><name>callVariable1</name><value>v</value></CallVariable></callvariables></mediaProperties></Dialog>"))
	f.Add([]byte("<Dialog><requestedAction>MAKE_CALL</requestedAction><fromAddress>51001</fromAddress><toAddress>+15551234</toAddress></Dialog>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseDialogRequest(body)
		if err != nil {
			return
		}
		n := len(r.Action) + len(r.Target) + len(r.From) + len(r.To) + len(r.DTMF)
		for _, v := range r.Vars {
			n += len(v.Name) + len(v.Value)
		}
		if n > len(body) {
			t.Fatalf("fields longer than the body: %+v", r)
		}
		if r.HasDTMF != strings.Contains(string(body), "dtmfString") && r.HasDTMF {
			t.Fatalf("dtmf without dtmfString in the body")
		}
		// Validation never panics on what the parser returns.
		_ = checkCallData(r)
		_ = validAddress(r.To)
		_ = validDTMF(r.DTMF)
	})
}
