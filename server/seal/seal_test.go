package seal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKey(t testing.TB, fill byte) []byte {
	t.Helper()
	return bytes.Repeat([]byte{fill}, KeySize)
}

func mustRing(t testing.TB, cur, prev []byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(cur, prev)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	k := mustRing(t, mustKey(t, 1), nil)
	tests := []struct {
		name     string
		pt, aad  []byte
		openWith []byte
	}{
		{"password", []byte("hunter2"), []byte("cred:agent1"), []byte("cred:agent1")},
		{"empty plaintext", []byte{}, []byte("cred:x"), []byte("cred:x")},
		{"no aad", []byte("token"), nil, nil},
		{"binary", bytes.Repeat([]byte{0, 255}, 1000), []byte("k"), []byte("k")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := k.Seal(tt.pt, tt.aad)
			if len(s) != len(tt.pt)+Overhead {
				t.Fatalf("sealed %d bytes, want %d", len(s), len(tt.pt)+Overhead)
			}
			if len(tt.pt) > 3 && bytes.Contains(s, tt.pt) {
				t.Fatal("the plaintext shows in the sealed value")
			}
			got, err := k.Open(s, tt.openWith)
			if err != nil || !bytes.Equal(got, tt.pt) {
				t.Fatalf("Open = %q, %v; want %q", got, err, tt.pt)
			}
		})
	}
	a, b := k.Seal([]byte("same"), nil), k.Seal([]byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one plaintext are equal: the nonce is not random")
	}
}

func TestRotation(t *testing.T) {
	old, cur := mustKey(t, 1), mustKey(t, 2)
	before := mustRing(t, old, nil)
	sealedOld := before.Seal([]byte("refresh-token"), []byte("cred:a"))

	during := mustRing(t, cur, old)
	if got, err := during.Open(sealedOld, []byte("cred:a")); err != nil || string(got) != "refresh-token" {
		t.Fatalf("a value sealed with the previous key: %q, %v", got, err)
	}
	sealedNew := during.Seal([]byte("new"), nil)
	if sealedNew[1] != KeyID(cur) {
		t.Fatalf("new seal carries key id %02x, want the current key's %02x", sealedNew[1], KeyID(cur))
	}
	if _, err := before.Open(sealedNew, nil); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("the old keyring opening a new seal: %v, want ErrWrongKey", err)
	}
	after := mustRing(t, cur, nil)
	if _, err := after.Open(sealedOld, []byte("cred:a")); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("after rotation, a value of the dropped key: %v, want ErrWrongKey", err)
	}
}

func TestTamperAndWrongKey(t *testing.T) {
	k := mustRing(t, mustKey(t, 1), nil)
	sealed := k.Seal([]byte("secret"), []byte("cred:a"))
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name   string
		sealed []byte
		aad    []byte
		ring   *Keyring
		want   error
		says   string
	}{
		{"flipped ciphertext", flip(headerLen), []byte("cred:a"), k, ErrTampered, "authentication failed"},
		{"flipped tag", flip(len(sealed) - 1), []byte("cred:a"), k, ErrTampered, "authentication failed"},
		{"flipped nonce", flip(3), []byte("cred:a"), k, ErrTampered, "authentication failed"},
		{"other aad (moved to another key)", sealed, []byte("cred:b"), k, ErrTampered, "authentication failed"},
		{"truncated", sealed[:Overhead-1], []byte("cred:a"), k, ErrTampered, "shorter"},
		{"unknown version", func() []byte { b := bytes.Clone(sealed); b[0] = 9; return b }(), []byte("cred:a"), k, ErrTampered, "version 9"},
		{"wrong key", sealed, []byte("cred:a"), mustRing(t, mustKey(t, 3), mustKey(t, 4)), ErrWrongKey, "(current) and"},
		{"flipped key id", flip(1), []byte("cred:a"), k, ErrWrongKey, "key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ring.Open(tt.sealed, tt.aad)
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("Open = %q, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %q does not say %q", err, tt.says)
			}
		})
	}
	if _, err := NewKeyring(make([]byte, 16), nil); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
	if _, err := NewKeyring(mustKey(t, 1), make([]byte, 31)); err == nil || !strings.Contains(err.Error(), "previous") {
		t.Fatalf("a short previous key: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "session.key")
	key, err := CreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("created key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if _, err := CreateKeyFile(path); err == nil || !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateKeyFile over an existing file: %v, want os.ErrExist", err)
	}
	loaded, err := LoadKeyFile(path)
	if err != nil || !bytes.Equal(loaded, key) {
		t.Fatalf("LoadKeyFile = %x, %v; want the created key", loaded, err)
	}

	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	const b64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" // 32 × 0x01
	tests := []struct {
		name, path string
		says       []string // empty: loads
	}{
		{"std base64 with newline", write("ok1", b64+"\n", 0o600), nil},
		{"unpadded", write("ok2", strings.TrimRight(b64, "="), 0o400), nil},
		{"group readable", write("g", b64, 0o640), []string{"chmod 600", "0640"}},
		{"world readable", write("w", b64, 0o604), []string{"chmod 600"}},
		{"short key", write("short", "AQEB", 0o600), []string{"3 bytes, want 32"}},
		{"not base64", write("junk", "not a key!", 0o600), []string{"not base64", "head -c 32 /dev/urandom"}},
		{"too big", write("big", strings.Repeat("A", 5000), 0o600), []string{"over 4096 bytes"}},
		{"missing", filepath.Join(dir, "nope"), []string{"no such file"}},
		{"directory", dir, []string{"not a regular file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKeyFile(tt.path)
			if len(tt.says) == 0 {
				if err != nil || !bytes.Equal(k, mustKey(t, 1)) {
					t.Fatalf("LoadKeyFile = %x, %v", k, err)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadKeyFile succeeded")
			}
			for _, s := range append(tt.says, tt.path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// FuzzOpen: no input makes Open panic or return plaintext together with
// an error, and only genuine seals open.
func FuzzOpen(f *testing.F) {
	k := mustRing(f, mustKey(f, 1), mustKey(f, 2))
	f.Add(k.Seal([]byte("password"), []byte("cred:a")), []byte("cred:a"))
	f.Add(mustRing(f, mustKey(f, 2), nil).Seal([]byte("old"), nil), []byte(nil))
	f.Add([]byte{1, 0}, []byte("x"))
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		pt, err := k.Open(sealed, aad)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrWrongKey) {
				t.Fatalf("error %v wraps neither ErrTampered nor ErrWrongKey", err)
			}
			return
		}
		// It opened: resealing must round-trip (the value was a real seal).
		if got, err := k.Open(k.Seal(pt, aad), aad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("reseal round trip: %q, %v", got, err)
		}
	})
}
