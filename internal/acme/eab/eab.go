// Package eab owns external account binding keys (RFC 8555 §7.3.4): the
// operator creates one per client with the CLI, the client shows it once
// when it registers. The HMAC key is stored sealed (AES-256-GCM) under a
// key-encryption key kept in the home, so the database alone cannot forge
// a binding.
package eab

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"strings"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// KEKFile is the key-encryption key's file name inside a home.
const KEKFile = "acme-eab.kek"

// LoadKEK reads the key-encryption key at path. The home creates it (with
// its other secrets) when it is made, so that nodes copied from one home
// share it; a missing file is an error here, never a new key.
func LoadKEK(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errs.New(errs.NotFound, "%s is missing: the home should have created it", path)
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "reading %s", path)
	}
	k, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(k) != 32 {
		return nil, errs.New(errs.Malformed, "%s does not hold a 32-byte base64url key", path)
	}
	return k, nil
}

// Sealer seals and opens EAB keys.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer for a 32-byte key-encryption key.
func NewSealer(kek []byte) (*Sealer, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "EAB key-encryption key")
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "EAB key-encryption key")
	}
	return &Sealer{g}, nil
}

// Seal encrypts key, bound to its key ID.
func (s *Sealer) Seal(kid string, key []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, key, []byte(kid))
}

// Open decrypts a sealed key of the given key ID.
func (s *Sealer) Open(kid string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errs.New(errs.Internal, "sealed EAB key is too short")
	}
	key, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "opening EAB key %q (wrong %s?)", kid, KEKFile)
	}
	return key, nil
}

// KeyStore is where Create stores keys.
type KeyStore interface {
	Authority(ctx context.Context, name string) (store.Authority, error)
	CreateEABKey(ctx context.Context, k store.EABKey, ev audit.Event) error
}

// Create makes a new EAB key for an authority that serves ACME, stores it
// sealed and returns the key ID and the base64url HMAC key, which is shown
// only this once. signet acme eab-key and the console both create here.
func Create(ctx context.Context, st KeyStore, s *Sealer, authority, actor string) (kid, hmacKey string, err error) {
	rec, err := st.Authority(ctx, authority)
	if err != nil {
		return "", "", errs.Wrap(errs.NotFound, err, "run 'signet authority list' for the names")
	}
	if !rec.ACME {
		return "", "", errs.New(errs.Rejected, "authority %q does not serve ACME: turn it on first with 'signet authority set %s --acme=true'", rec.Name, rec.Name)
	}
	id := make([]byte, 12)
	rand.Read(id)
	kid = "eab-" + base64.RawURLEncoding.EncodeToString(id)
	key := make([]byte, 32)
	rand.Read(key)
	k := store.EABKey{ID: kid, Authority: authority, Sealed: s.Seal(kid, key)}
	if err := st.CreateEABKey(ctx, k, audit.Event{Actor: actor}); err != nil {
		return "", "", err
	}
	return kid, base64.RawURLEncoding.EncodeToString(key), nil
}
