package web

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestHandlerServesPagesAssetsAndGadget(t *testing.T) {
	h, err := Handler(Config{PublicURL: "https://relay.example.com:1125"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, wantType, wantBody string
		wantCSP                  bool
	}{
		{"/", "text/html", `id="password-form"`, true},
		{"/supervisor", "text/html", `id="team"`, true},
		{"/static/relay-client.js", "javascript", "export class RelayClient", false},
		{"/static/app.css", "text/css", "--brand", false},
		{"/gadget/relay.xml", "application/xml", `https://relay.example.com:1125/static/gadget.js`, false},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Type"), tt.wantType) || !strings.Contains(string(body), tt.wantBody) {
			t.Errorf("%s: %d %q, body has %q: %v", tt.path, rec.Code, rec.Header().Get("Content-Type"), tt.wantBody, strings.Contains(string(body), tt.wantBody))
		}
		if got := rec.Header().Get("Content-Security-Policy"); tt.wantCSP && !strings.Contains(got, "script-src 'self'") {
			t.Errorf("%s: CSP %q", tt.path, got)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/static/nope.js", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown asset: %d", rec.Code)
	}
}

// gadgetModule is the part of an OpenSocial gadget Finesse needs.
type gadgetModule struct {
	Prefs struct {
		Title    string `xml:"title,attr"`
		Requires []struct {
			Feature string `xml:"feature,attr"`
		} `xml:"Require"`
	} `xml:"ModulePrefs"`
	UserPrefs []struct {
		Name string `xml:"name,attr"`
	} `xml:"UserPref"`
	Content struct {
		Type string `xml:"type,attr"`
		Body string `xml:",chardata"`
	} `xml:"Content"`
}

func TestGadgetIsAFinesseGadget(t *testing.T) {
	h, _ := Handler(Config{PublicURL: "https://relay.example.com:1125"})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/gadget/relay.xml", nil))
	var m gadgetModule
	if err := xml.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("gadget XML: %v", err)
	}
	features := map[string]bool{}
	for _, r := range m.Prefs.Requires {
		features[r.Feature] = true
	}
	for _, f := range []string{"pubsub-2", "dynamic-height", "settitle"} {
		if !features[f] {
			t.Errorf("gadget must require %s", f)
		}
	}
	prefs := map[string]bool{}
	for _, p := range m.UserPrefs {
		prefs[p.Name] = true
	}
	if !prefs["scheme"] || !prefs["host"] || !prefs["hostPort"] {
		t.Error("gadget needs the scheme/host/hostPort user prefs Finesse fills")
	}
	if m.Content.Type != "html" || !strings.Contains(m.Content.Body, "__UP_hostPort__/desktop/assets/js/finesse.min.js") {
		t.Error("gadget must load finesse.min.js from the Finesse host")
	}
}

func TestLayoutsDeclareTheGadget(t *testing.T) {
	for _, f := range []string{"../configs/layouts/agent.xml", "../configs/layouts/supervisor.xml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var layout struct {
			XMLName xml.Name
			Layouts []struct {
				Role    string   `xml:"role"`
				Gadgets []string `xml:"tabs>tab>columns>column>gadgets>gadget"`
			} `xml:"layout"`
		}
		if err := xml.Unmarshal(data, &layout); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if layout.XMLName.Local != "finesseLayout" || layout.XMLName.Space != "http://www.cisco.com/vtg/finesse" {
			t.Errorf("%s: root %v", f, layout.XMLName)
		}
		found := false
		for _, l := range layout.Layouts {
			for _, g := range l.Gadgets {
				if strings.HasSuffix(g, "/gadget/relay.xml") {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s does not declare the relay gadget", f)
		}
	}
}

// Issue 12: /static/index.html and /static/supervisor.html served the full
// pages without the page headers and with Access-Control-Allow-Origin: *.
func TestPagesOnlyAtTheirRoutesWithHeaders(t *testing.T) {
	finesse := "https://finesse-a.example.com:8445"
	h, err := Handler(Config{PublicURL: "https://relay.example.com:1125", AllowedOrigins: []string{finesse}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, path := range []string{"/static/index.html", "/static/supervisor.html", "/static/", "/static/./index.html", "/static/../static/index.html", "/static/INDEX.HTML"} {
		rec := get(path, finesse)
		for hops := 0; rec.Code/100 == 3 && hops < 5; hops++ { // the mux cleans paths with a redirect
			rec = get(rec.Header().Get("Location"), finesse)
		}
		if rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "<html") {
			t.Errorf("%s: %d, a page served outside its route", path, rec.Code)
		}
	}
	for _, path := range []string{"/", "/supervisor"} {
		rec := get(path, "")
		hdr := rec.Header()
		csp := hdr.Get("Content-Security-Policy")
		for _, want := range []string{"frame-ancestors 'none'", "script-src 'self'", "object-src 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if hdr.Get("Referrer-Policy") == "" || hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, hdr)
		}
		if hdr.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: a page must not be readable cross-origin", path)
		}
	}
	// Static assets: readable by the Finesse desktop origin only, never "*".
	tests := []struct{ origin, want string }{
		{finesse, finesse},
		{"HTTPS://Finesse-A.example.com:8445/", "HTTPS://Finesse-A.example.com:8445/"},
		{"https://evil.example", ""},
		{"", ""},
	}
	for _, tt := range tests {
		rec := get("/static/gadget.js", tt.origin)
		if rec.Code != http.StatusOK {
			t.Fatalf("gadget.js: %d", rec.Code)
		}
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tt.want {
			t.Errorf("Origin %q: Access-Control-Allow-Origin %q, want %q", tt.origin, got, tt.want)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(rec.Header().Get("Vary"), "Origin") {
			t.Errorf("gadget.js headers %v", rec.Header())
		}
	}
}
