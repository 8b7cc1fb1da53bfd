// Package seal encrypts the relay's credentials at rest (a password, an
// IdS refresh token, a gadget's Finesse token) before they reach the
// store, with AES-256-GCM under a key from configuration.
//
// A sealed value is
//
//	version (1 byte) | key id (1 byte) | nonce (12 bytes) | ciphertext | tag (16 bytes)
//
// The key id is the first byte of SHA-256 of the key, so a keyring holding
// a current and a previous key (rotation) knows which one sealed a value
// without trying both. The version and key id are authenticated with the
// caller's associated data: a value sealed for one store key (say the
// session it belongs to) does not open under another.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// KeySize is the key length: AES-256.
const KeySize = 32

const (
	version   = 1
	nonceSize = 12
	headerLen = 2 + nonceSize
	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead = headerLen + 16
)

var (
	// ErrWrongKey: the value was sealed with a key this keyring does not
	// hold (a different SESSION_KEY_FILE, or a rotated-out key).
	ErrWrongKey = errors.New("seal: sealed with a key this relay does not have")
	// ErrTampered: the value is not a sealed value, was altered, or is
	// opened with other associated data than it was sealed with.
	ErrTampered = errors.New("seal: value altered, truncated or bound to another name")
)

// Keyring seals with its current key and opens with the current or the
// previous one. It is safe for concurrent use.
type Keyring struct {
	cur, prev *key
}

type key struct {
	id   byte
	aead cipher.AEAD
}

func newKey(raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("seal: key of %d bytes, want %d", len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &key{id: KeyID(raw), aead: aead}, nil
}

// KeyID is the id byte a sealed value carries for raw: the first byte of
// its SHA-256.
func KeyID(raw []byte) byte {
	sum := sha256.Sum256(raw)
	return sum[0]
}

// NewKeyring returns a keyring sealing with current; previous (nil for
// none) is still accepted by Open, during a rotation. Keys are 32 bytes.
func NewKeyring(current, previous []byte) (*Keyring, error) {
	cur, err := newKey(current)
	if err != nil {
		return nil, fmt.Errorf("current key: %w", err)
	}
	k := &Keyring{cur: cur}
	if previous != nil {
		if k.prev, err = newKey(previous); err != nil {
			return nil, fmt.Errorf("previous key: %w", err)
		}
	}
	return k, nil
}

// Seal encrypts plaintext with the current key, bound to aad (may be nil;
// the same aad must be given to Open).
func (k *Keyring) Seal(plaintext, aad []byte) []byte {
	out := make([]byte, headerLen, Overhead+len(plaintext))
	out[0], out[1] = version, k.cur.id
	randRead(out[2:headerLen])
	return k.cur.aead.Seal(out, out[2:headerLen], plaintext, additional(out[:2], aad)) // #nosec G407 -- the nonce is 12 bytes from crypto/rand (randRead just above), fresh for every Seal
}

// additional is GCM's associated data: the header's version and key id,
// then the caller's.
func additional(hdr, aad []byte) []byte {
	b := make([]byte, 0, len(hdr)+len(aad))
	return append(append(b, hdr...), aad...)
}

// Open decrypts a value Seal made with the current or the previous key and
// the same aad. Errors wrap ErrWrongKey or ErrTampered.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("seal: %d bytes, shorter than any sealed value: %w", len(sealed), ErrTampered)
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("seal: format version %d, this relay reads %d: %w", sealed[0], version, ErrTampered)
	}
	id := sealed[1]
	tried := false
	for _, key := range []*key{k.cur, k.prev} {
		if key == nil || key.id != id {
			continue
		}
		tried = true
		pt, err := key.aead.Open(nil, sealed[2:headerLen], sealed[headerLen:], additional(sealed[:2], aad))
		if err == nil {
			return pt, nil
		}
	}
	if !tried {
		return nil, fmt.Errorf("seal: value sealed with key id %02x, this relay has %s: %w", id, k.ids(), ErrWrongKey)
	}
	return nil, fmt.Errorf("seal: authentication failed with key id %02x: %w", id, ErrTampered)
}

func (k *Keyring) ids() string {
	s := fmt.Sprintf("%02x (current)", k.cur.id)
	if k.prev != nil {
		s += fmt.Sprintf(" and %02x (previous)", k.prev.id)
	}
	return s
}

// CurrentID returns the current key's id byte (for logs: which key seals).
func (k *Keyring) CurrentID() byte { return k.cur.id }

// randRead fills b from crypto/rand, which never fails (Go 1.24+: it
// crashes the program rather than return an error).
func randRead(b []byte) { _, _ = rand.Read(b) }
