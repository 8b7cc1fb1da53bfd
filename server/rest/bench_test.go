package rest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchUser is the body the bench upstream answers, a typical User.
const benchUser = `<User><uri>/finesse/api/User/1001</uri><roles><role>Agent</role></roles><loginId>1001</loginId><loginName>agent1001</loginName><state>READY</state><stateChangeTime>2024-01-01T10:00:00.000Z</stateChangeTime><pendingState></pendingState><reasonCodeId>-1</reasonCodeId><settings><wrapUpOnIncoming>OPTIONAL</wrapUpOnIncoming></settings><extension>51001</extension><firstName>Ada</firstName><lastName>Agent</lastName><teamId>10</teamId><teamName>Support</teamName><dialogs>/finesse/api/User/1001/Dialogs</dialogs><mediaType>1</mediaType></User>`

// benchUpstream is a minimal Finesse: it echoes requestId and answers a
// fixed User (the full fake records every request, which would grow).
func benchUpstream(b *testing.B) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("requestId", r.Header.Get("requestId"))
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, benchUser)
	}))
	b.Cleanup(s.Close)
	return s
}

func benchClient(b *testing.B, upstream string) *Client {
	return New(Config{HTTPClient: testHTTPClient(b), Credentials: agent1001,
		Side: func() Side { return Side{Name: "A", BaseURL: upstream} }})
}

// BenchmarkDirect is the baseline: a plain GET of the fake Finesse.
func BenchmarkDirect(b *testing.B) {
	up := benchUpstream(b)
	hc := testHTTPClient(b)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, up.URL+"/finesse/api/User/1001", nil)
		req.Header.Set("Authorization", "Basic MTAwMTpkZW1v")
		req.Header.Set("Accept", "application/xml")
		rsp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, rsp.Body)
		rsp.Body.Close()
	}
}

// BenchmarkClientDo is the same GET through Client.Do.
func BenchmarkClientDo(b *testing.B) {
	c := benchClient(b, benchUpstream(b).URL)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Do(b.Context(), Request{Path: "User/1001"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProxyHandler calls the proxy handler in process: the relay's
// own work (allow-list, headers, copy) plus the same one upstream hop.
func BenchmarkProxyHandler(b *testing.B) {
	h := proxyFor(benchClient(b, benchUpstream(b).URL))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/api/finesse/User/1001", nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkProxyHTTP is what a browser pays: a GET to the relay over HTTP,
// which then calls Finesse (two hops).
func BenchmarkProxyHTTP(b *testing.B) {
	relay := httptest.NewServer(proxyFor(benchClient(b, benchUpstream(b).URL)))
	b.Cleanup(relay.Close)
	hc := testHTTPClient(b)
	b.ReportAllocs()
	for b.Loop() {
		rsp, err := hc.Get(relay.URL + "/api/finesse/User/1001")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, rsp.Body)
		rsp.Body.Close()
		if rsp.StatusCode != http.StatusOK {
			b.Fatal(rsp.StatusCode)
		}
	}
}
