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
	"path"
	"text/template"
	"time"

	"finesse-relay/httpx"
)

//go:embed static gadget client/relay-client.js
var assets embed.FS

// clientScript is the JS client: its one file lives in the npm package
// (web/client) and is served with the other assets as
// /static/relay-client.js.
const clientScript = "relay-client.js"

// staticFS is the static assets plus the JS client from web/client.
type staticFS struct{ static fs.FS }

func (f staticFS) Open(name string) (fs.File, error) {
	if name == clientScript {
		return assets.Open("client/" + clientScript)
	}
	return f.static.Open(name)
}

// Config says how the pages refer to the relay.
type Config struct {
	// PublicURL is the relay's external base URL (no trailing slash); the
	// gadget, rendered by Finesse, loads its scripts from it.
	PublicURL string
	// Version is shown in page footers and used to bust caches.
	Version string
	// AllowedOrigins are the browser origins (the Finesse desktop) whose
	// pages load the gadget's scripts cross-origin: static assets answer
	// them with Access-Control-Allow-Origin set to that origin (never "*").
	// "*" echoes any origin. Compared case-insensitively, without a
	// trailing slash.
	AllowedOrigins []string
}

// pageCSP keeps pages to their own scripts and the relay's own endpoints.
// The pages are never framed (frame-ancestors 'none'); the gadget is not one
// of them: Finesse renders it on its own origin from /gadget/relay.xml.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// assetCSP is sent with static assets: none of them is a document, so a
// stray HTML or SVG rendered from them runs nothing.
const assetCSP = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; sandbox"

// pages are the HTML documents, served only at their routes (with the page
// headers), never under /static/.
var pages = map[string]string{"/": "index.html", "/supervisor": "supervisor.html"}

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
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	static := staticFS{sub}
	assetNames, err := assetSet(sub)
	if err != nil {
		return nil, err
	}
	assetNames[clientScript] = true
	origins := httpx.NewOrigins(cfg.AllowedOrigins...)
	mux := http.NewServeMux()
	page := func(name string) http.HandlerFunc {
		body, err := fs.ReadFile(static, name)
		if err != nil {
			panic(err) // embedded at build time: cannot happen
		}
		return func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Content-Security-Policy", pageCSP)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "same-origin")
			h.Set("Cache-Control", "no-cache")
			_, _ = w.Write(body)
		}
	}
	mux.HandleFunc("GET /{$}", page(pages["/"]))
	mux.HandleFunc("GET /supervisor", page(pages["/supervisor"]))
	fileServer := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if !assetNames[r.URL.Path] { // pages, directories, anything not embedded
			http.NotFound(w, r)
			return
		}
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", assetCSP)
		h.Set("Referrer-Policy", "same-origin")
		// The gadget's module scripts are loaded cross-origin by Finesse
		// desktop pages: those origins, and only those, may read them.
		h.Add("Vary", "Origin")
		if o := r.Header.Get("Origin"); o != "" && origins.Allows(o) {
			h.Set("Access-Control-Allow-Origin", o)
		}
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

// assetSet names the files served under /static/: every embedded file
// except the HTML pages.
func assetSet(static fs.FS) (map[string]bool, error) {
	names := map[string]bool{}
	err := fs.WalkDir(static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if path.Ext(p) != ".html" {
			names[p] = true
		}
		return nil
	})
	return names, err
}
