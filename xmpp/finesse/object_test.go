package finesse

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// assertObjectRoundTrip checks that o survives the notification form
// (EncodeData), the REST form (xml.Marshal) and JSON.
func assertObjectRoundTrip(t testing.TB, o Object) {
	t.Helper()
	data, err := EncodeData(o)
	if err != nil {
		t.Fatalf("EncodeData: %v", err)
	}
	back, err := DecodeData(data)
	if err != nil {
		t.Fatalf("DecodeData(EncodeData): %v\n%s", err, data)
	}
	assertEqual(t, "DecodeData(EncodeData(o))", back, o)

	rest, err := xml.Marshal(o)
	if err != nil {
		t.Fatalf("xml.Marshal: %v", err)
	}
	back, err = DecodeData(rest)
	if err != nil {
		t.Fatalf("DecodeData(xml.Marshal): %v\n%s", err, rest)
	}
	if r, ok := o.(*Raw); ok {
		// The REST form of a Raw is re-encoded token by token: the element
		// survives, the bytes may not, and a second pass changes nothing.
		eq(t, "raw element", back.(*Raw).Element, r.Element)
		again, _ := xml.Marshal(back)
		eq(t, "raw fixed point", string(again), string(rest))
	} else {
		assertEqual(t, "DecodeData(xml.Marshal(o))", back, o)
	}

	js, err := json.Marshal(o)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	fresh := reflect.New(reflect.TypeOf(o).Elem()).Interface()
	if err := json.Unmarshal(js, fresh); err != nil {
		t.Fatalf("json.Unmarshal: %v", err)
	}
	js2, _ := json.Marshal(fresh)
	eq(t, "JSON fixed point", string(js2), string(js))
}

func TestDecodeDataByElementName(t *testing.T) {
	tests := []struct {
		data string
		want Object
	}{
		{`<user><loginId>1</loginId></user>`, &User{LoginID: "1"}},
		{`<User><LoginId>1</LoginId></User>`, &User{LoginID: "1"}},
		{`<USER><LOGINID>1</LOGINID></USER>`, &User{LoginID: "1"}},
		{`<dialog><id>7</id></dialog>`, &Dialog{ID: "7"}},
		{`<Dialog><ID>7</ID></Dialog>`, &Dialog{ID: "7"}},
		{`<dialogs><Dialog><id>7</id></Dialog><dialog><id>8</id></dialog></dialogs>`, &Dialogs{Dialogs: []Dialog{{ID: "7"}, {ID: "8"}}}},
		{`<Dialogs></Dialogs>`, &Dialogs{}},
		{`<team><id>5</id></team>`, &Team{ID: "5"}},
		{`<queue><uri>/finesse/api/Queue/9/</uri></queue>`, &Queue{URI: "/finesse/api/Queue/9/", ID: "9"}},
		{`<Queue><id>3</id><uri>/finesse/api/Queue/9</uri></Queue>`, &Queue{URI: "/finesse/api/Queue/9", ID: "3"}},
		{`<Queues><Queue><uri>/finesse/api/Queue/9</uri></Queue></Queues>`, &Queues{Queues: []Queue{{URI: "/finesse/api/Queue/9", ID: "9"}}}},
		{`<systemInfo><status>IN_SERVICE</status></systemInfo>`, &SystemInfo{Status: "IN_SERVICE"}},
		{`<apiErrors><apiError><errorType>T</errorType></apiError></apiErrors>`, &APIErrors{Errors: []APIError{{ErrorType: "T"}}}},
		{`<ApiErrors><ApiError><ErrorType>T</ErrorType></ApiError></ApiErrors>`, &APIErrors{Errors: []APIError{{ErrorType: "T"}}}},
		{`<ReasonCode><id>16</id><forAll> TRUE </forAll></ReasonCode>`, &ReasonCode{ID: "16", ForAll: true}},
		{`<ReasonCodes/>`, &ReasonCodes{}},
		{`<TeamMessage><id>1</id></TeamMessage>`, &Raw{Element: "TeamMessage", XML: `<TeamMessage><id>1</id></TeamMessage>`}},
		{"\n  <teamMessage/>\n", &Raw{Element: "teamMessage", XML: `<teamMessage/>`}},
		{`<?xml version="1.0"?><!-- c --><!DOCTYPE m><TeamMessage><content>hi</content></TeamMessage><!-- after -->`, &Raw{Element: "TeamMessage", XML: `<TeamMessage><content>hi</content></TeamMessage>`}},
		{`<media><mrdId>5001</mrdId><state>READY</state></media>`, &Media{MRDID: "5001", State: "READY"}},
		{`<Media><uri>/finesse/api/User/1/Media/7/</uri><MAXDIALOGLIMIT> 3 </MAXDIALOGLIMIT></Media>`, &Media{URI: "/finesse/api/User/1/Media/7/", MRDID: "7", MaxDialogLimit: 3}},
		{`<MediaList><Media><mrdId>1</mrdId></Media><media><mrdId>2</mrdId></media></MediaList>`, &MediaList{Media: []Media{{MRDID: "1"}, {MRDID: "2"}}}},
		{`<mediaList/>`, &MediaList{}},
		{`<f:user xmlns:f="urn:x"><f:loginId>1</f:loginId></f:user>`, &User{LoginID: "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			got, err := DecodeData([]byte(tt.data))
			if err != nil {
				t.Fatalf("DecodeData: %v", err)
			}
			assertEqual(t, "object", got, tt.want)
		})
	}
}

func TestDecodeDataEmpty(t *testing.T) {
	for _, data := range []string{"", " \n\t "} {
		o, err := DecodeData([]byte(data))
		if o != nil || err != nil {
			t.Errorf("DecodeData(%q) = %v, %v; want nil, nil", data, o, err)
		}
	}
}

func TestDecodeDataKeepsStringsExactly(t *testing.T) {
	o, err := DecodeData([]byte("<user><firstName>  Ana  </firstName><lastName>a&amp;b&lt;c&#x263A;</lastName><extension><![CDATA[<5>]]></extension><state>READY<!-- c --></state></user>"))
	if err != nil {
		t.Fatal(err)
	}
	u := o.(*User)
	eq(t, "firstName", u.FirstName, "  Ana  ")
	eq(t, "lastName", u.LastName, "a&b<c☺")
	eq(t, "extension", u.Extension, "<5>")
	eq(t, "state", u.State, "READY")
}

// Unknown children are kept in Extra, written again from the tree (no
// attributes, no text beside child elements, text escaped once); mixed
// content of known elements is ignored.
func TestDecodeDataKeepsUnknownChildren(t *testing.T) {
	o, err := DecodeData([]byte(`<user>text<mobileAgent><mode>NAILED</mode></mobileAgent><loginId>1</loginId>more` +
		`<agentPhone x="1">a&amp;b</agentPhone><X:layout xmlns:X="urn:x"><Row>one</Row>mixed<empty/></X:layout></user>`))
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "user", o, &User{LoginID: "1", MobileAgent: &MobileAgent{Mode: "NAILED"}, Extra: []Raw{
		{Element: "agentPhone", XML: "<agentPhone>a&amp;b</agentPhone>"},
		{Element: "layout", XML: "<layout><Row>one</Row><empty></empty></layout>"},
	}})
	assertObjectRoundTrip(t, o)
}

// Every typed object keeps its unknown children the same way.
func TestExtraOnEveryObject(t *testing.T) {
	x := Raw{Element: "future", XML: "<future>1</future>"}
	xs := []Raw{x}
	tests := []struct {
		data string
		want Object
	}{
		{`<user><future>1</future><settings><future>1</future></settings><mobileAgent><future>1</future></mobileAgent><ReasonCode><future>1</future></ReasonCode></user>`,
			&User{Extra: xs, Settings: &Settings{Extra: xs}, MobileAgent: &MobileAgent{Extra: xs}, ReasonCode: &ReasonCode{Extra: xs}}},
		{`<Dialog><future>1</future><mediaProperties><future>1</future><callvariables><CallVariable><name>a</name><future>1</future></CallVariable></callvariables></mediaProperties>` +
			`<participants><Participant><future>1</future></Participant></participants><scheduledCallbackInfo><future>1</future></scheduledCallbackInfo></Dialog>`,
			&Dialog{Extra: xs, MediaProperties: MediaProperties{Extra: xs, CallVariables: []CallVariable{{Name: "a"}}}, Participants: []Participant{{Extra: xs}},
				ScheduledCallbackInfo: &ScheduledCallbackInfo{Extra: xs}}},
		{`<Team><future>1</future></Team>`, &Team{Extra: xs}},
		{`<Queue><future>1</future><statistics><future>1</future></statistics></Queue>`, &Queue{Extra: xs, Statistics: &QueueStatistics{Extra: xs}}},
		{`<SystemInfo><future>1</future><primaryNode><future>1</future></primaryNode><ctiServers><ctiServer><future>1</future></ctiServer></ctiServers></SystemInfo>`,
			&SystemInfo{Extra: xs, PrimaryNode: &ServerNode{Extra: xs}, CTIServers: []CTIServer{{Extra: xs}}}},
		{`<ApiErrors><ApiError><future>1</future></ApiError></ApiErrors>`, &APIErrors{Errors: []APIError{{Extra: xs}}}},
		{`<Media><future>1</future></Media>`, &Media{Extra: xs}},
	}
	for _, tt := range tests {
		t.Run(tt.want.Kind(), func(t *testing.T) {
			got, err := DecodeData([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			assertEqual(t, "object", got, tt.want)
			assertObjectRoundTrip(t, got)
		})
	}
}

func TestDecodeDataErrors(t *testing.T) {
	many := "<Team><users>" + strings.Repeat("<User/>", MaxElements) + "</users></Team>"
	tests := []struct {
		name  string
		data  string
		limit bool
	}{
		{"not XML", "hello", false},
		{"unclosed", "<user><loginId>1</loginId>", false},
		{"mismatched", "<user></User>", false},
		{"second root", "<user/><user/>", false},
		{"bad integer", "<Queue><statistics><callsInQueue>three</callsInQueue></statistics></Queue>", false},
		{"integer overflow", "<Queue><statistics><agentsReady>99999999999999999999</agentsReady></statistics></Queue>", false},
		{"bad port", "<SystemInfo><primaryNode><httpsPort>x</httpsPort></primaryNode></SystemInfo>", false},
		{"bad boolean", "<user><ReasonCode><forAll>yes</forAll></ReasonCode></user>", false},
		{"invalid UTF-8", "<user><loginId>\xff</loginId></user>", false},
		{"too deep", strings.Repeat("<a>", MaxDepth+1) + strings.Repeat("</a>", MaxDepth+1), true},
		{"too many elements", many, true},
		{"too large", "<user>" + strings.Repeat(" ", MaxUpdateSize) + "</user>", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := DecodeData([]byte(tt.data))
			if !errors.Is(err, ErrMalformedData) {
				t.Fatalf("error %v, want ErrMalformedData", err)
			}
			if errors.Is(err, ErrLimit) != tt.limit {
				t.Errorf("errors.Is(err, ErrLimit) = %v, want %v (%v)", !tt.limit, tt.limit, err)
			}
			if o != nil {
				t.Errorf("object %v returned with the error", o)
			}
		})
	}
}

func TestDecodeDataDepthBoundary(t *testing.T) {
	ok := strings.Repeat("<a>", MaxDepth) + strings.Repeat("</a>", MaxDepth)
	if _, err := DecodeData([]byte(ok)); err != nil {
		t.Errorf("depth %d refused: %v", MaxDepth, err)
	}
}

func TestParseFunctions(t *testing.T) {
	const apiErr = `<ApiErrors><ApiError><ErrorType>Authorization Failure</ErrorType><ErrorMessage>UNAUTHORIZED</ErrorMessage><ErrorData>1001</ErrorData></ApiError></ApiErrors>`
	parsers := map[string]func([]byte) (any, error){
		"user":        func(b []byte) (any, error) { return ParseUser(b) },
		"dialog":      func(b []byte) (any, error) { return ParseDialog(b) },
		"dialogs":     func(b []byte) (any, error) { return ParseDialogs(b) },
		"team":        func(b []byte) (any, error) { return ParseTeam(b) },
		"queue":       func(b []byte) (any, error) { return ParseQueue(b) },
		"queues":      func(b []byte) (any, error) { return ParseQueues(b) },
		"systeminfo":  func(b []byte) (any, error) { return ParseSystemInfo(b) },
		"reasoncodes": func(b []byte) (any, error) { return ParseReasonCodes(b) },
	}
	for root, parse := range parsers {
		t.Run(root, func(t *testing.T) {
			if _, err := parse([]byte("<" + strings.ToUpper(root) + "/>")); err != nil {
				t.Errorf("<%s/>: %v", strings.ToUpper(root), err)
			}
			_, err := parse([]byte(`<somethingElse/>`))
			if !errors.Is(err, ErrMalformedData) || !strings.Contains(err.Error(), "root element <somethingElse>") {
				t.Errorf("wrong root: error %v, want ErrMalformedData naming the root", err)
			}
			_, err = parse([]byte(apiErr))
			var ae *APIErrors
			if !errors.As(err, &ae) {
				t.Fatalf("ApiErrors body: error %v, want *APIErrors", err)
			}
			eq(t, "error", err.Error(), "finesse: Authorization Failure: UNAUTHORIZED (1001)")
		})
	}
}

func TestParseTypedValues(t *testing.T) {
	u, err := ParseUser([]byte(`<User><loginId>1001</loginId><roles><role>Agent</role><role>Supervisor</role></roles><teams><Team><id>10</id></Team></teams></User>`))
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "user", u, &User{LoginID: "1001", Roles: []string{"Agent", "Supervisor"}, Teams: []Team{{ID: "10"}}})

	ds, err := ParseDialogs([]byte(`<Dialogs><Dialog><id>1</id></Dialog></Dialogs>`))
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "dialogs", ds, []Dialog{{ID: "1"}})
	ds, err = ParseDialogs([]byte(`<Dialogs/>`))
	if err != nil || ds != nil {
		t.Errorf("empty Dialogs = %v, %v; want nil, nil", ds, err)
	}

	si, err := ParseSystemInfo([]byte(`<systemInfo><status>IN_SERVICE</status><xmppDomain>d</xmppDomain></systemInfo>`))
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "systeminfo", si, &SystemInfo{Status: "IN_SERVICE", XMPPDomain: "d"})

	qs, err := ParseQueues([]byte(`<Queues><Queue><uri>/finesse/api/Queue/5001</uri><name>Sales</name></Queue></Queues>`))
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "queues", qs, []Queue{{URI: "/finesse/api/Queue/5001", ID: "5001", Name: "Sales"}})
}

func TestParseAPIErrorsBothForms(t *testing.T) {
	rest, err := ParseAPIErrors([]byte(`<ApiErrors><ApiError><ErrorType>Call Operation Failure</ErrorType><ErrorMessage>CF_RESOURCE_OUT_OF_SERVICE</ErrorMessage><ErrorData>34</ErrorData></ApiError></ApiErrors>`))
	if err != nil {
		t.Fatal(err)
	}
	data, err := ParseAPIErrors([]byte(`<apiErrors><apiError><errorData>34</errorData><errorMessage>CF_RESOURCE_OUT_OF_SERVICE</errorMessage><errorType>Call Operation Failure</errorType></apiError></apiErrors>`))
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "REST form vs notification form", rest, data)
	if _, err := ParseAPIErrors([]byte(`<User/>`)); !errors.Is(err, ErrMalformedData) {
		t.Errorf("ParseAPIErrors(<User/>) error %v, want ErrMalformedData", err)
	}
	eq(t, "empty report", (&APIErrors{}).Error(), "finesse: empty apiErrors")
}

func TestEncodeDataForms(t *testing.T) {
	tests := []struct {
		o          Object
		data, rest string
	}{
		{&User{LoginID: "1", Roles: []string{"Agent"}}, "<user>", "<User>"},
		{&Dialog{ID: "1"}, "<dialog>", "<Dialog>"},
		{&Dialogs{Dialogs: []Dialog{{ID: "1"}}}, "<dialogs><Dialog>", "<Dialogs><Dialog>"},
		{&Team{ID: "1"}, "<team>", "<Team>"},
		{&Queue{ID: "1"}, "<queue>", "<Queue>"},
		{&Queues{}, "<queues>", "<Queues>"},
		{&SystemInfo{}, "<systemInfo>", "<SystemInfo>"},
		{&ReasonCode{}, "<reasonCode>", "<ReasonCode>"},
		{&ReasonCodes{}, "<reasonCodes>", "<ReasonCodes>"},
		{&APIErrors{Errors: []APIError{{ErrorType: "T", ErrorMessage: "M", ErrorData: "D"}}},
			"<apiErrors><apiError><errorData>D</errorData><errorMessage>M</errorMessage><errorType>T</errorType></apiError></apiErrors>",
			"<ApiErrors><ApiError><ErrorType>T</ErrorType><ErrorMessage>M</ErrorMessage><ErrorData>D</ErrorData></ApiError></ApiErrors>"},
		{&Raw{Element: "teamMessage", XML: `<teamMessage><id>1</id></teamMessage>`}, `<teamMessage><id>1</id></teamMessage>`, `<teamMessage><id>1</id></teamMessage>`},
		{&Media{MRDID: "5001", State: "READY", Routable: true}, "<media><uri></uri><mrdId>5001</mrdId><name></name><interruptible>false</interruptible><state>READY</state><routable>true</routable></media>",
			"<Media><uri></uri><mrdId>5001</mrdId><name></name><interruptible>false</interruptible><state>READY</state><routable>true</routable></Media>"},
		{&MediaList{Media: []Media{{MRDID: "1"}}}, "<mediaList><Media>", "<MediaList><Media>"},
	}
	for _, tt := range tests {
		t.Run(tt.o.Kind(), func(t *testing.T) {
			data, err := EncodeData(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(data), tt.data) {
				t.Errorf("EncodeData = %s, want it to start with %s", data, tt.data)
			}
			rest, err := xml.Marshal(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(rest), tt.rest) {
				t.Errorf("xml.Marshal = %s, want it to start with %s", rest, tt.rest)
			}
			assertObjectRoundTrip(t, tt.o)
		})
	}
}

func TestEncodeDataNil(t *testing.T) {
	for _, o := range []Object{nil, (*User)(nil), (*Raw)(nil), (*APIErrors)(nil)} {
		if _, err := EncodeData(o); !errors.Is(err, ErrMalformedData) {
			t.Errorf("EncodeData(%#v) error %v, want ErrMalformedData", o, err)
		}
	}
}

// A full notification-form User matches the element names of sample F.1.
func TestEncodeDataUserShape(t *testing.T) {
	u := &User{URI: "/finesse/api/User/1", LoginID: "1", State: "NOT_READY", ReasonCodeID: "16",
		ReasonCode: &ReasonCode{ID: "16", Label: "Lunch"}, Roles: []string{"Agent"},
		Settings: &Settings{WrapUpOnIncoming: "OPTIONAL"}, Dialogs: "/finesse/api/User/1/Dialogs"}
	data, err := EncodeData(u)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<user>", "<loginId>1</loginId>", "<ReasonCode><id>16</id>", "<roles><role>Agent</role></roles>",
		"<settings><wrapUpOnIncoming>OPTIONAL</wrapUpOnIncoming></settings>", "<pendingState></pendingState>", "<dialogs>/finesse/api/User/1/Dialogs</dialogs>"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s lacks %s", data, want)
		}
	}
	// Empty lists are written as empty elements, as Finesse does
	// (<participants/>, <callvariables/>); optional scalars are left out.
	if !strings.Contains(string(data), "<teams></teams>") {
		t.Errorf("%s lacks the empty <teams>", data)
	}
	for _, absent := range []string{"<wrapUpTimer>", "wrapUpOnOutgoing"} {
		if strings.Contains(string(data), absent) {
			t.Errorf("%s has %s for an unset field", data, absent)
		}
	}
}

func TestUnmarshalXMLAnyCase(t *testing.T) {
	// The typed values also work with encoding/xml directly, embedded in a
	// caller's own structure.
	var doc struct {
		Who  User        `xml:"who"`
		Call Dialog      `xml:"call"`
		List Dialogs     `xml:"list"`
		Errs APIErrors   `xml:"errs"`
		Sys  SystemInfo  `xml:"sys"`
		Q    Queue       `xml:"q"`
		Qs   Queues      `xml:"qs"`
		T    Team        `xml:"t"`
		RC   ReasonCode  `xml:"rc"`
		RCs  ReasonCodes `xml:"rcs"`
	}
	err := xml.Unmarshal([]byte(`<doc>
		<who><LOGINID>1</LOGINID></who><call><Id>2</Id></call><list><DIALOG><id>3</id></DIALOG></list>
		<errs><ApiError><ErrorData>4</ErrorData></ApiError></errs><sys><Status>IN_SERVICE</Status></sys>
		<q><URI>/finesse/api/Queue/5</URI></q><qs><queue><Name>n</Name></queue></qs><t><USERS><user><loginid>6</loginid></user></USERS></t>
		<rc><SystemCode>true</SystemCode></rc><rcs><reasoncode><Code>7</Code></reasoncode></rcs></doc>`), &doc)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "user", doc.Who.LoginID, "1")
	eq(t, "dialog", doc.Call.ID, "2")
	eq(t, "dialogs", doc.List.Dialogs[0].ID, "3")
	eq(t, "apiErrors", doc.Errs.Errors[0].ErrorData, "4")
	eq(t, "systemInfo", doc.Sys.Status, "IN_SERVICE")
	eq(t, "queue", doc.Q.ID, "5")
	eq(t, "queues", doc.Qs.Queues[0].Name, "n")
	eq(t, "team", doc.T.Users[0].LoginID, "6")
	eq(t, "reason code", doc.RC.SystemCode, true)
	eq(t, "reason codes", doc.RCs.ReasonCodes[0].Code, "7")

	var q Queue
	err = xml.Unmarshal([]byte(`<Queue><statistics><callsInQueue>x</callsInQueue></statistics></Queue>`), &q)
	if !errors.Is(err, ErrMalformedData) {
		t.Errorf("bad statistic through xml.Unmarshal: error %v, want ErrMalformedData", err)
	}
	err = xml.Unmarshal([]byte(strings.Repeat("<a>", MaxDepth+1)+strings.Repeat("</a>", MaxDepth+1)), &q)
	if !errors.Is(err, ErrLimit) {
		t.Errorf("deep document through xml.Unmarshal: error %v, want ErrLimit", err)
	}
}

func TestJSONShapes(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"user", &User{LoginID: "1001", State: "READY", Roles: []string{"Agent"}},
			`{"uri":"","loginId":"1001","loginName":"","firstName":"","lastName":"","extension":"","state":"READY","stateChangeTime":"","pendingState":"","reasonCodeId":"","roles":["Agent"],"teamId":"","teamName":"","skillTargetId":"","mediaType":"","dialogs":"","wrapUpTimer":""}`},
		{"reason code", &ReasonCode{ID: "16", Category: "NOT_READY", Code: "10", Label: "Lunch", ForAll: true},
			`{"id":"16","uri":"","category":"NOT_READY","code":"10","label":"Lunch","forAll":true,"systemCode":false}`},
		{"empty dialogs", &Dialogs{}, `{"dialogs":[]}`},
		{"dialogs by value", Dialogs{Dialogs: []Dialog{{ID: "1", MediaProperties: MediaProperties{DNIS: "5", CallVariables: []CallVariable{{Name: "callVariable1", Value: "x"}}}, Participants: []Participant{{Actions: []string{"ANSWER"}}}}}},
			`{"dialogs":[{"id":"1","uri":"","associatedDialogUri":"","secondaryId":"","fromAddress":"","toAddress":"","callbackNumber":"","state":"","mediaType":"","mediaProperties":{"mediaId":"","dialedNumber":"","callType":"","dnis":"5","queueNumber":"","queueName":"","wrapUpReason":"","callKeyCallId":"","callKeySequenceNum":"","callKeyPrefix":"","callVariables":[{"name":"callVariable1","value":"x"}]},"participants":[{"actions":["ANSWER"],"mediaAddress":"","mediaAddressType":"","startTime":"","state":"","stateCause":"","stateChangeTime":""}]}]}`},
		{"empty queues", &Queues{}, `{"queues":[]}`},
		{"queue", &Queue{ID: "5001", Statistics: &QueueStatistics{CallsInQueue: -1}},
			`{"uri":"","id":"5001","name":"","statistics":{"callsInQueue":-1,"startTimeOfLongestCallInQueue":"","agentsReady":0,"agentsNotReady":0,"agentsBusyOther":0,"agentsLoggedOn":0,"agentsTalkingInbound":0,"agentsTalkingOutbound":0,"agentsTalkingInternal":0,"agentsWrapUpNotReady":0,"agentsWrapUpReady":0}}`},
		{"empty reason codes", &ReasonCodes{}, `{"reasonCodes":[]}`},
		{"api errors", &APIErrors{Errors: []APIError{{ErrorType: "T", ErrorMessage: "M", ErrorData: "D"}}}, `{"apiErrors":[{"errorType":"T","errorMessage":"M","errorData":"D","errorMedia":"","overrideable":false}]}`},
		{"empty api errors", &APIErrors{}, `{"apiErrors":[]}`},
		{"system info", &SystemInfo{Status: "IN_SERVICE", PrimaryNode: &ServerNode{Host: "a", HTTPSPort: 8445}},
			`{"currentTimestamp":"","deploymentType":"","lastCTIHeartbeatStatus":"","lastSuccessCTIHeartbeatTime":"","ctiVersion":0,"ctiHeartbeatInterval":0,"ctiMMode":"","ctiTimeInMMode":0,"finesseMMode":"","finesseTimeInMMode":0,"license":"","peripheralId":"",` +
				`"primaryNode":{"host":"a","httpsPort":8445,"xmppPort":0,"xmppSecurePort":0},"status":"IN_SERVICE","statusReason":"","systemAuthMode":"","timezoneOffset":"","uri":"","xmppDomain":"","xmppPubSubDomain":""}`},
		{"team", &Team{ID: "10", Name: "Support", Users: []User{{LoginID: "1"}}},
			`{"uri":"","id":"10","name":"Support","users":[{"uri":"","loginId":"1","loginName":"","firstName":"","lastName":"","extension":"","state":"","stateChangeTime":"","pendingState":"","reasonCodeId":"","teamId":"","teamName":"","skillTargetId":"","mediaType":"","dialogs":"","wrapUpTimer":""}]}`},
		{"media", &Media{MRDID: "5001", Name: "Cisco_Chat_MRD", State: "READY", MaxDialogLimit: 3, Routable: true},
			`{"uri":"","id":"","mrdId":"5001","name":"Cisco_Chat_MRD","description":"","mediaConnected":false,"interruptible":false,"maxDialogLimit":3,"interruptAction":"","dialogLogoutAction":"","state":"READY","stateChangeTime":"","reasonCodeId":"","routable":true}`},
		{"empty media list", &MediaList{}, `{"mediaList":[]}`},
		{"extra", &Team{ID: "1", Extra: []Raw{{Element: "x", XML: "<x>1</x>"}}}, `{"uri":"","id":"1","name":"","extra":[{"element":"x","xml":"\u003cx\u003e1\u003c/x\u003e"}]}`},
		{"raw", &Raw{Element: "media", XML: "<media/>"}, `{"element":"media","xml":"\u003cmedia/\u003e"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "JSON", string(got), tt.want)
		})
	}
}

func TestObjectKinds(t *testing.T) {
	objs := map[string]Object{
		KindUser: &User{}, KindDialog: &Dialog{}, KindDialogs: &Dialogs{}, KindTeam: &Team{}, KindQueue: &Queue{},
		KindQueues: &Queues{}, KindSystemInfo: &SystemInfo{}, KindAPIErrors: &APIErrors{}, KindReasonCode: &ReasonCode{},
		KindReasonCodes: &ReasonCodes{}, KindRaw: &Raw{}, KindMedia: &Media{}, KindMediaList: &MediaList{},
	}
	for kind, o := range objs {
		eq(t, "Kind", o.Kind(), kind)
	}
}

func TestErrorMessagesQuoteLittleInput(t *testing.T) {
	long := strings.Repeat("9", 10_000)
	_, err := DecodeData([]byte("<Queue><statistics><callsInQueue>x" + long + "</callsInQueue></statistics></Queue>"))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a 10 kB value is %d bytes: %.300v", len(err.Error()), err)
	}
	_, err = ParseNode("/finesse/api/" + long)
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a 10 kB path is %d bytes", len(err.Error()))
	}
	_, err = ParseUpdate("/n", []byte("<Update><event>"+long+"</event></Update>"))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a 10 kB event is %d bytes", len(err.Error()))
	}
}

// xml.Marshal gives the same REST form for a value as for a pointer.
func TestMarshalXMLValueAndPointer(t *testing.T) {
	ae := APIErrors{Errors: []APIError{{ErrorType: "T", ErrorMessage: "M", ErrorData: "D"}}}
	raw := Raw{Element: "teamMessage", XML: "<teamMessage><id>1</id></teamMessage>"}
	for _, tt := range []struct{ value, pointer any }{{ae, &ae}, {raw, &raw}} {
		v, err := xml.Marshal(tt.value)
		if err != nil {
			t.Fatal(err)
		}
		p, err := xml.Marshal(tt.pointer)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "value vs pointer", string(v), string(p))
	}
}

type fakeObject struct{}

func (fakeObject) Kind() string { return "" }

func TestEncodeDataForeignObject(t *testing.T) {
	if _, err := EncodeData(fakeObject{}); !errors.Is(err, ErrMalformedData) {
		t.Errorf("EncodeData(foreign object) error %v, want ErrMalformedData", err)
	}
}
