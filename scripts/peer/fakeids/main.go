// Command fakeids is the stand-in for Cisco Identity Service (IdS) used by
// the test peer (scripts/peer/start.sh). It is not part of the product.
//
// Dovecot, which checks every XMPP password for the peer's Prosody, treats
// the password as an access token and validates it with an RFC 7662-style
// introspection call to this server:
//
//	POST /introspect  token=<token>  (application/x-www-form-urlencoded)
//	  200 {"active":true,"username":"<loginId>"}   known token
//	  401 {"active":false}                          unknown token
//
// GET /introspect?token= and "Authorization: Bearer <token>" work too.
// Tokens come from the -tokens file ("token username" per line, re-read
// whenever a token is not found) and from POST /tokens with the form fields
// token and username, so tests can add tokens while the peer runs.
// GET /stats answers {"calls":N,"ok":M}; GET /healthz answers 200.
//
// Tokens are never logged; only the username and the outcome are.
//
// It listens on loopback only.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxBody bounds request bodies: a token form is a few kilobytes at most.
const maxBody = 64 << 10

type store struct {
	mu     sync.Mutex
	file   string
	tokens map[string]string
	calls  int64
	oks    int64
}

// lookup returns the username of tok, re-reading the tokens file on a miss.
func (s *store) lookup(tok string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if tok == "" {
		return "", false
	}
	if u, ok := s.tokens[tok]; ok {
		s.oks++
		return u, true
	}
	if s.file == "" {
		return "", false
	}
	f, err := os.Open(s.file)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) >= 2 && !strings.HasPrefix(fl[0], "#") && fl[0] == tok {
			s.tokens[tok] = fl[1]
			s.oks++
			return fl[1], true
		}
	}
	return "", false
}

func (s *store) add(tok, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = user
}

func (s *store) stats() (calls, oks int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.oks
}

func (s *store) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/introspect", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		tok := r.FormValue("token")
		if tok == "" {
			tok = r.FormValue("access_token")
		}
		if tok == "" {
			tok, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		u, ok := s.lookup(tok)
		log.Printf("introspect user=%q active=%v", u, ok)
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"active": false})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "username": u, "sub": u})
	})
	mux.HandleFunc("POST /tokens", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		tok, u := r.FormValue("token"), r.FormValue("username")
		if tok == "" || u == "" {
			http.Error(w, "want form fields token and username", http.StatusBadRequest)
			return
		}
		s.add(tok, u)
		log.Printf("token added for user=%q", u) // #nosec G706 -- the user name is logged with %q (quoted, no line breaks); test peer only
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		calls, oks := s.stats()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{"calls": calls, "ok": oks})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "listen address (loopback only)")
	file := flag.String("tokens", "", `file of "token username" lines, re-read on every miss`)
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("fakeids: -listen: %v", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		log.Fatal("fakeids: refusing to listen on a non-loopback address")
	}
	st := &store{file: *file, tokens: map[string]string{}}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           st.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("fakeids listening on http://%s/introspect", *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("fakeids: %v", err)
	}
}
