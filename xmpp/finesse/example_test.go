package finesse_test

import (
	"encoding/json"
	"fmt"

	"finesse-relay/xmpp/finesse"
)

// The xmpp client hands over the bytes between <notification> and
// </notification> as they arrived; the relay decodes the envelope, then the
// object, and sends the object's JSON to browsers.
func ExampleParseNotification() {
	content := []byte(`&lt;Update&gt;&lt;data&gt;&lt;user&gt;&lt;loginId&gt;1001&lt;/loginId&gt;&lt;state&gt;READY&lt;/state&gt;&lt;/user&gt;&lt;/data&gt;&lt;event&gt;PUT&lt;/event&gt;&lt;requestId&gt;&lt;/requestId&gt;&lt;source&gt;/finesse/api/User/1001&lt;/source&gt;&lt;/Update&gt;`)
	u, err := finesse.ParseNotification(finesse.UserNode("1001"), content)
	if err != nil {
		fmt.Println(err)
		return
	}
	obj, err := finesse.DecodeData(u.Data)
	if err != nil {
		fmt.Println(err)
		return
	}
	switch v := obj.(type) {
	case *finesse.User:
		fmt.Println(u.Event, v.LoginID, v.State)
	case *finesse.APIErrors:
		fmt.Println("error:", v)
	}
	js, _ := json.Marshal(obj)
	fmt.Println(string(js))
	// Output:
	// PUT 1001 READY
	// {"uri":"","loginId":"1001","loginName":"","firstName":"","lastName":"","extension":"","state":"READY","stateChangeTime":"","pendingState":"","reasonCodeId":"","teamId":"","teamName":"","skillTargetId":"","mediaType":"","dialogs":"","wrapUpTimer":""}
}

// The simulator builds what Finesse sends: the object in notification
// form, wrapped in an <Update>.
func ExampleEncodeUpdate() {
	data, _ := finesse.EncodeData(&finesse.APIErrors{Errors: []finesse.APIError{{
		ErrorType: "Call Operation Failure", ErrorMessage: "CF_RESOURCE_OUT_OF_SERVICE", ErrorData: "34",
	}}})
	doc := finesse.EncodeUpdate(finesse.Update{
		Event: finesse.EventPut, Source: finesse.DialogURI("16817001"), RequestID: "9d4b", Data: data,
	})
	fmt.Println(string(doc))
	// Output:
	// <Update><data><apiErrors><apiError><errorData>34</errorData><errorMessage>CF_RESOURCE_OUT_OF_SERVICE</errorMessage><errorType>Call Operation Failure</errorType></apiError></apiErrors></data><event>PUT</event><requestId>9d4b</requestId><source>/finesse/api/Dialog/16817001</source></Update>
}

// A REST body that turns out to be an error report comes back as an
// *APIErrors error.
func ExampleParseUser() {
	_, err := finesse.ParseUser([]byte(`<ApiErrors><ApiError><ErrorType>Authentication Failure</ErrorType><ErrorMessage>UNAUTHORIZED</ErrorMessage><ErrorData>jsmith</ErrorData></ApiError></ApiErrors>`))
	fmt.Println(err)
	// Output:
	// finesse: Authentication Failure: UNAUTHORIZED (jsmith)
}

func ExampleParseNode() {
	n, _ := finesse.ParseNode("/finesse/api/User/1001/Media/5001/")
	fmt.Println(n.Kind, n.ID, n.MediaID, n)
	fmt.Println(finesse.IsCollection("/finesse/api/User/1001/Dialogs", finesse.DialogsNode("1001")))
	fmt.Println(finesse.IsCollection(finesse.DialogURI("7"), finesse.DialogsNode("1001")))
	// Output:
	// Media 1001 5001 /finesse/api/User/1001/Media/5001
	// true
	// false
}
