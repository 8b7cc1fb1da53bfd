// Command extauth is the password checker of the test peer's ejabberd
// (scripts/peer/ejabberd-start.sh), plugged in with ejabberd's
// auth_method: external. It is not part of the product.
//
// Like Dovecot for the Prosody peer, it accepts two kinds of password for
// a user: the user's static password from the -passwords file ("user
// password" per line), or an access token that the IdS stand-in's RFC
// 7662-style introspection endpoint (-introspect) reports active for that
// same user. It speaks ejabberd's external authentication protocol on
// stdin/stdout: each request is a 2-byte big-endian length then
// "op:user:server[:password]"; each answer is the length 2 then a 2-byte
// 1 (yes) or 0 (no).
//
// Passwords and tokens are never logged (it logs nothing but fatal errors,
// to stderr, which ejabberd keeps in its log).
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// maxRequest bounds one request (ejabberd's length prefix is 16 bits anyway).
const maxRequest = 1 << 16

type checker struct {
	passwords  map[string]string
	introspect string
	client     *http.Client
}

func main() {
	passFile := flag.String("passwords", "", `file of "user password" lines (required)`)
	introspect := flag.String("introspect", "", "token introspection URL (tokens are refused without it)")
	flag.Parse()
	pw, err := readPasswords(*passFile)
	if err != nil {
		log.Fatalf("extauth: %v", err)
	}
	c := &checker{passwords: pw, introspect: *introspect, client: &http.Client{Timeout: 5 * time.Second}}
	if err := c.serve(os.Stdin, os.Stdout); !errors.Is(err, io.EOF) {
		log.Fatalf("extauth: %v", err)
	}
}

func readPasswords(path string) (map[string]string, error) {
	if path == "" {
		return nil, errors.New("-passwords is required")
	}
	f, err := os.Open(path) // #nosec G304 -- the -passwords flag set by whoever runs the test peer; a test helper, not the product
	if err != nil {
		return nil, fmt.Errorf("passwords file: %w", err)
	}
	defer f.Close()
	pw := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		user, pass, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if ok && user != "" {
			pw[user] = pass
		}
	}
	return pw, sc.Err()
}

// serve answers requests until r ends (io.EOF) or fails.
func (c *checker) serve(r io.Reader, w io.Writer) error {
	br := bufio.NewReader(r)
	var hdr [2]byte
	buf := make([]byte, maxRequest)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint16(hdr[:])
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return fmt.Errorf("reading a request of %d bytes: %w", n, err)
		}
		var out [4]byte
		binary.BigEndian.PutUint16(out[:2], 2)
		if c.answer(string(buf[:n])) {
			binary.BigEndian.PutUint16(out[2:], 1)
		}
		if _, err := w.Write(out[:]); err != nil {
			return err
		}
	}
}

// answer handles one request: auth and isuser; everything else (setpass,
// tryregister, removeuser) is refused.
func (c *checker) answer(req string) bool {
	parts := strings.SplitN(req, ":", 4)
	switch {
	case len(parts) == 4 && parts[0] == "auth":
		return c.auth(parts[1], parts[3])
	case len(parts) >= 3 && parts[0] == "isuser":
		_, ok := c.passwords[parts[1]]
		return ok
	}
	return false
}

func (c *checker) auth(user, pass string) bool {
	if want, ok := c.passwords[user]; ok && pass != "" && want == pass {
		return true
	}
	if c.introspect == "" || pass == "" {
		return false
	}
	resp, err := c.client.PostForm(c.introspect, url.Values{"token": {pass}})
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var v struct {
		Active   bool   `json:"active"`
		Username string `json:"username"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v) != nil {
		return false
	}
	return v.Active && v.Username == user
}
