// Package web holds the relay's browser assets, embedded in the binary: the
// agent desktop tab, the supervisor view, the JS client
// (/static/relay-client.js) and the Finesse gadget (/gadget/relay.xml).
//
// Concurrency: the handler is safe for concurrent use; assets are read-only.
package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"text/template"
	"time"
)

//go:embed static gadget
var assets embed.FS

// Config says how the pages refer to the relay.
type Config struct {
	// PublicURL is the relay's external base URL (no trailing slash); the
	// gadget, rendered by Finesse, loads its scripts from it.
	PublicURL string
	// Version is shown in page footers and used to bust caches.
	Version string
}

// pageCSP keeps pages to their own scripts and the relay's own endpoints.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"

// Handler serves the pages and assets.
func Handler(cfg Config) (http.Handler, error) {
	gadgetTmpl, err := template.ParseFS(assets, "gadget/relay.xml")
	if err != nil {
		return nil, err
	}
	var gadgetXML bytes.Buffer
	if err := gadgetTmpl.Execute(&gadgetXML, cfg); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	page := func(name string) http.HandlerFunc {
		body, err := fs.ReadFile(static, name)
		if err != nil {
			panic(err) // embedded at build time: cannot happen
		}
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", pageCSP)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Referrer-Policy", "same-origin")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(body)
		}
	}
	mux.HandleFunc("GET /{$}", page("index.html"))
	mux.HandleFunc("GET /supervisor", page("supervisor.html"))
	fileServer := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// The gadget's scripts are loaded by pages on the Finesse origin.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		fileServer.ServeHTTP(w, r)
	})))
	modTime := time.Now()
	mux.HandleFunc("GET /gadget/relay.xml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "relay.xml", modTime, bytes.NewReader(gadgetXML.Bytes()))
	})
	return mux, nil
}
