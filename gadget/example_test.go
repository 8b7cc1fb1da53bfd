package gadget_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"

	"finesse-relay/gadget"
)

// A session core publishes into a Stream; a browser redeems a ticket at
// the Gateway and gets a welcome, the snapshot, then live events.
func Example() {
	stream := gadget.NewStream(gadget.StreamConfig{})
	stream.SetIdentity("1001", []string{"Agent"})
	stream.State("/finesse/api/User/1001", map[string]string{"state": "NOT_READY"})
	stream.Status("up", "A", "finesse-a.example")

	tickets := gadget.NewTickets(gadget.TicketsConfig{})
	gw := gadget.NewGateway(gadget.GatewayConfig{Tickets: tickets, AllowedOrigins: []string{"https://finesse.example:8445"}})
	srv := httptest.NewServer(gw)
	defer srv.Close()
	defer gw.Shutdown(context.Background())

	ticket, _, err := tickets.Issue(stream, "relay-session-7")
	if err != nil {
		fmt.Println(err)
		return
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?ticket="+ticket, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ws.Close()
	for i := range 4 {
		if i == 3 { // after welcome, snapshot state and status: a live event
			stream.Event("/finesse/api/User/1001", "PUT", "/finesse/api/User/1001", "req-1",
				map[string]string{"state": "READY"}, map[string]string{"state": "READY"})
		}
		var m struct {
			Type string `json:"type"`
			Seq  int64  `json:"seq"`
			Node string `json:"node"`
			Data any    `json:"data"`
		}
		_, b, _ := ws.ReadMessage()
		_ = json.Unmarshal(b, &m)
		fmt.Println(m.Type, m.Seq, m.Node, m.Data)
	}
	// Output:
	// welcome 1  <nil>
	// state 1 /finesse/api/User/1001 map[state:NOT_READY]
	// status 1  <nil>
	// event 2 /finesse/api/User/1001 map[state:READY]
}
