// Package kms owns signet's private keys: it generates them and hands them
// out as crypto.Signer behind URIs, "pkcs11:..." (RFC 7512) for keys on a
// token and "file:PATH" for scrypt-encrypted PKCS#8 software keys.
// Nothing outside kms knows where a key lives or how to unlock it.
//
// Tokens are reached through PKCS#11 modules, C libraries loaded with cgo
// (pkcs11.go, eddsa.go, pkcs11_certs.go); a build without cgo has software
// keys only and refuses pkcs11: URIs (nopkcs11.go).
package kms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"maps"
	"strings"
	"sync"

	"signet/internal/errs"
)

// KeyType names an algorithm and size a key can be generated with.
type KeyType string

const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	Ed25519   KeyType = "ed25519"
	RSA2048   KeyType = "rsa-2048"
	RSA3072   KeyType = "rsa-3072"
	RSA4096   KeyType = "rsa-4096"
)

// KeyTypes lists every KeyType, in the order they are shown to people.
var KeyTypes = []KeyType{ECDSAP256, ECDSAP384, Ed25519, RSA2048, RSA3072, RSA4096}

// ParseKeyType accepts one of the KeyTypes names.
func ParseKeyType(s string) (KeyType, error) {
	for _, t := range KeyTypes {
		if string(t) == s {
			return t, nil
		}
	}
	names := make([]string, len(KeyTypes))
	for i, t := range KeyTypes {
		names[i] = string(t)
	}
	return "", errs.New(errs.Malformed, "unknown key type %q: valid types are %s", s, strings.Join(names, ", "))
}

// rsaBits returns the modulus size of an RSA key type, or 0.
func (t KeyType) rsaBits() int {
	switch t {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

// Options configures a Manager. Secrets are named by Source, never held.
// PKCS#11 modules and PIN sources come only from here: a key URI naming
// them (module-path, pin-source) is refused, for key URIs are stored in a
// database, and whoever may write it must not choose the code a node loads
// or the files it reads.
type Options struct {
	Dir        string           // base for relative software key paths; when set, software keys must be under it
	Module     string           // PKCS#11 module of tokens not in Tokens
	PIN        Source           // PIN source of tokens not in Tokens, or whose entry has none
	Tokens     map[string]Token // by token label
	Passphrase Source           // passphrase source for software keys
}

// KeyInfo describes a private key found on a token.
type KeyInfo struct {
	URI         string           `json:"uri"`
	Token       string           `json:"token,omitempty"`
	Label       string           `json:"label,omitempty"`
	ID          string           `json:"id,omitempty"` // hex
	Type        string           `json:"type"`
	PublicKey   crypto.PublicKey `json:"-"`
	Sensitive   bool             `json:"sensitive"`
	Extractable bool             `json:"extractable"`
}

// TokenInfo is a token a module offers.
type TokenInfo struct {
	Label  string `json:"label"`
	Serial string `json:"serial"`
	Slot   uint   `json:"slot"`
	Model  string `json:"model,omitempty"`
}

// Manager opens keys by URI. It is safe for concurrent use; it caches the
// tokens and keys it opened and the secrets it read, so an operator is asked
// for a PIN once per process, not once per signature.
type Manager struct {
	opts Options

	openMu  sync.Mutex // serializes opening tokens
	mu      sync.Mutex // guards the fields below
	closed  bool
	secrets map[Source][]byte
	config  map[string]Token // Options.Tokens and those added since
	tokens  map[tokenKey]*token
	signers map[string]crypto.Signer // by URI as given
}

// NewManager returns a Manager; it opens nothing until a key is asked for.
func NewManager(o Options) *Manager {
	config := make(map[string]Token, len(o.Tokens))
	maps.Copy(config, o.Tokens)
	return &Manager{
		opts:    o,
		config:  config,
		secrets: map[Source][]byte{},
		tokens:  map[tokenKey]*token{},
		signers: map[string]crypto.Signer{},
	}
}

// AddToken configures one more token, by label, for the Manager's life;
// errs.Conflict if the label is configured differently already.
func (m *Manager) AddToken(label string, t Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.config[label]; ok && cur != t {
		return errs.New(errs.Conflict, "token %q is configured with module %s already; edit its entry [tokens.%s] in signet.toml instead", label, cur.Module, label)
	}
	m.config[label] = t
	return nil
}

// Generate creates a new key at uri and returns its signer. A pkcs11: key is
// generated on the token and can never leave it; a file: key is written
// encrypted with the passphrase. An existing key is never overwritten.
func (m *Manager) Generate(ctx context.Context, uri string, t KeyType) (crypto.Signer, error) {
	if _, err := ParseKeyType(string(t)); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var s crypto.Signer
	var err error
	switch scheme(uri) {
	case "pkcs11":
		s, err = m.generatePKCS11(uri, t)
	case "file":
		s, err = m.generateFile(uri, t)
	default:
		return nil, badScheme(uri)
	}
	if err != nil {
		return nil, err
	}
	return m.remember(uri, s)
}

// Signer opens the existing key at uri.
func (m *Manager) Signer(ctx context.Context, uri string) (crypto.Signer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	s, ok := m.signers[uri]
	m.mu.Unlock()
	if ok {
		return s, nil
	}
	var err error
	switch scheme(uri) {
	case "pkcs11":
		s, err = m.openPKCS11(uri)
	case "file":
		s, err = m.openFile(uri)
	default:
		return nil, badScheme(uri)
	}
	if err != nil {
		return nil, err
	}
	return m.remember(uri, s)
}

// List returns the private keys on the token named by a "pkcs11:token=T" URI.
func (m *Manager) List(ctx context.Context, uri string) ([]KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if scheme(uri) != "pkcs11" {
		return nil, errs.New(errs.Malformed, "list %q: only pkcs11: URIs name a token whose keys can be listed", Redact(uri))
	}
	return m.listPKCS11(uri)
}

// Close releases every token the Manager opened and forgets the secrets it
// read. Signers it handed out stop working.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	for k, s := range m.secrets {
		clear(s)
		delete(m.secrets, k)
	}
	m.signers = map[string]crypto.Signer{}
	tokens := m.tokens
	m.tokens = map[tokenKey]*token{}
	m.mu.Unlock()

	// Closing takes the process-wide module lock; never hold m.mu for it,
	// as opening a token takes them in the other order.
	var first error
	for _, t := range tokens {
		if err := t.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// remember checks a freshly opened signer and caches it by URI.
func (m *Manager) remember(uri string, s crypto.Signer) (crypto.Signer, error) {
	if s == nil || s.Public() == nil {
		return nil, errs.New(errs.Internal, "key %q has no public key", Redact(uri))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.signers[uri]; ok {
		return prev, nil
	}
	m.signers[uri] = s
	return s, nil
}

// secret reads src once and caches it; what names the secret for a prompt.
func (m *Manager) secret(src Source, what string) ([]byte, error) {
	return m.cached(src, what, src.Read)
}

// newSecret is secret for a secret that protects a new key: a prompt asks
// twice (Source.ReadNew).
func (m *Manager) newSecret(src Source, what string) ([]byte, error) {
	return m.cached(src, what, src.ReadNew)
}

func (m *Manager) cached(src Source, what string, read func(string) ([]byte, error)) ([]byte, error) {
	if src == "" {
		return nil, errs.New(errs.Malformed, "no source configured for the %s: set one (env:VAR, file:PATH, prompt or unlock)", what)
	}
	if given(src) {
		read = func(what string) ([]byte, error) { return Unlock.Read(what) } // not given yet
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errs.New(errs.Unavailable, "key manager is closed")
	}
	b, ok := m.secrets[src]
	m.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := read(what)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.secrets[src] = b
	m.mu.Unlock()
	return b, nil
}

// forget drops a cached secret that turned out to be wrong, so the next
// attempt asks again instead of locking the token with retries.
func (m *Manager) forget(src Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.secrets[src]; ok {
		clear(b)
		delete(m.secrets, src)
	}
}

func scheme(uri string) string {
	i := strings.IndexByte(uri, ':')
	if i < 0 {
		return ""
	}
	return strings.ToLower(uri[:i])
}

func badScheme(uri string) error {
	return errs.New(errs.Malformed, "key URI %q: want pkcs11:token=T;object=NAME for a token key or file:PATH for a software key", Redact(uri))
}

// InProcess reports whether signer is one of Go's own key types, a key
// signing in this process. A token can return a faulty signature (a
// hardware fault, a driver bug), so callers verify the signatures of other
// signers before what they sign leaves; Go's ECDSA and Ed25519 code signs
// in this process and its RSA code verifies itself.
func InProcess(signer crypto.Signer) bool {
	switch signer.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey, *rsa.PrivateKey:
		return true
	}
	return false
}
