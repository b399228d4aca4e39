// Package sshca owns SSH certificates: the one path that signs them (policy
// on principals → validity limits → sign → record and audit → return), the
// CA keys of SSH authorities and their rollover, trust lines for known_hosts
// and TrustedUserCAKeys, OpenSSH KRLs, and an inspector like ssh-keygen -L.
package sshca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/lazymap"
	"signet/internal/nonce"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
)

// Keys opens CA keys by URI. kms.Manager implements it.
type Keys interface {
	Signer(ctx context.Context, uri string) (crypto.Signer, error)
}

// Store is the part of the store the SSH CA uses: its authorities' keys,
// the certificates it signs and revokes, and its audit events.
type Store interface {
	Authority(ctx context.Context, name string) (store.Authority, error)
	AddSSHKey(ctx context.Context, k store.SSHKey, ev audit.Event) error
	SetSSHKeyState(ctx context.Context, authority, fingerprint string, state store.SSHKeyState, ev audit.Event) error
	SSHKeys(ctx context.Context, authority string) ([]store.SSHKey, error)
	RecordSSHCertificate(ctx context.Context, c store.SSHCertificate, ev audit.Event) error
	SSHCertificate(ctx context.Context, serial uint64) (store.SSHCertificate, error)
	SSHCertificates(ctx context.Context, f store.SSHFilter) ([]store.SSHCertificate, error)
	RevokeSSHCertificate(ctx context.Context, serial uint64, at time.Time, ev audit.Event) error
	RevokeSSHKeyID(ctx context.Context, authority, keyID string, at time.Time, ev audit.Event) (int, error)
	AppendEvent(ctx context.Context, ev audit.Event) error
	// Secret returns the named secret shared by every node, storing value
	// under the name if it has none yet.
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)
}

// Options are what a CA is built from.
type Options struct {
	Store Store
	Keys  Keys
	Clock func() time.Time // nil: time.Now
}

// CA signs SSH certificates for the SSH authorities in its store.
type CA struct {
	store Store
	keys  Keys
	now   func() time.Time

	auths   lazymap.Map[*authority] // loaded authorities, read without a lock
	serials serials

	nonceMu sync.Mutex
	nonces  *nonce.Nonces // host renewal nonces, made on first use
	obs     atomic.Pointer[Observer]
}

// Observer is told of each signature of an SSH CA key (package metrics):
// its backend (software, pkcs11), token label ("" for software keys),
// latency, and err when it failed.
type Observer interface {
	Signature(backend, token string, d time.Duration, err error)
}

// Observe sets who is told of each signature.
func (c *CA) Observe(o Observer) { c.obs.Store(&o) }

// New returns a CA over the given store and keys.
func New(o Options) *CA {
	c := &CA{store: o.Store, keys: o.Keys, now: o.Clock}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// authority is a loaded SSH authority with its active key, ready to sign.
type authority struct {
	rec       store.Authority
	purpose   profile.Purpose
	policy    policy.Policy
	key       store.SSHKey
	signer    ssh.MultiAlgorithmSigner
	algorithm string // the signer's first algorithm (rsa-sha2-512 for RSA)
	caKey     []byte // signer's public key in wire form
	// verify is set for keys outside this process (tokens): their
	// signatures are checked before a certificate is recorded.
	verify bool
	signed func(time.Duration, error) // tells the observer, if any
}

func (c *CA) authority(ctx context.Context, name string) (*authority, error) {
	return c.auths.Get(name, func() (*authority, error) { return c.load(ctx, name) })
}

// forget drops a cached authority after its keys changed.
func (c *CA) forget(name string) { c.auths.Forget(name) }

// Reset drops every cached authority, with its opened key: after a lock
// or unlock (signet lock, signet unlock) each opens its key afresh.
func (c *CA) Reset() {
	for _, name := range c.auths.Keys() {
		c.auths.Forget(name)
	}
}

// load reads an SSH authority, opens its active key and checks the key is
// the one recorded. Loads of one CA are serialised.
func (c *CA) load(ctx context.Context, name string) (*authority, error) {
	rec, err := c.sshAuthority(ctx, name)
	if err != nil {
		return nil, err
	}
	a := &authority{rec: rec, purpose: profile.Purpose(rec.Purpose)}
	if a.policy, err = policy.Parse(rec.Policy); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "authority %q: stored policy", name)
	}
	keys, err := c.store.SSHKeys(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.State == store.SSHKeyActive {
			a.key = k
		}
	}
	if a.key.Fingerprint == "" {
		return nil, errs.New(errs.Conflict, "SSH authority %q has no active key: run 'signet ssh key add --authority %s --activate' or activate a trusted key", name, name)
	}
	cs, err := c.keys.Signer(ctx, a.key.KeyURI)
	if err != nil {
		return nil, errs.Wrap(errs.KindOf(err), err, "authority %q", name)
	}
	signer, err := NewSigner(cs)
	if err != nil {
		return nil, err
	}
	m, ok := signer.(ssh.MultiAlgorithmSigner)
	if !ok || len(m.Algorithms()) == 0 {
		return nil, errs.New(errs.Internal, "authority %q: the SSH signer cannot name its algorithm", name)
	}
	a.signer, a.algorithm = m, m.Algorithms()[0]
	a.caKey = a.signer.PublicKey().Marshal()
	if fp := fingerprint(a.caKey); fp != a.key.Fingerprint {
		return nil, errs.New(errs.Internal, "authority %q: key %s is %s, but %s was recorded", name, a.key.KeyURI, fp, a.key.Fingerprint)
	}
	a.verify = !kms.InProcess(cs)
	backend, token := kms.Backend(a.key.KeyURI)
	a.signed = func(d time.Duration, err error) {
		if o := c.obs.Load(); o != nil {
			(*o).Signature(backend, token, d, err)
		}
	}
	return a, nil
}

// event stamps e, whose fields are named at the call, with the CA's clock.
func (c *CA) event(e audit.Event, data any) audit.Event { return e.Stamp(c.now(), data) }

// NewSigner wraps a CA key for SSH, refusing key types OpenSSH would not
// trust as a CA. RSA keys sign with rsa-sha2-512 only: ssh-rsa (SHA-1)
// certificates are refused by OpenSSH 8.8 and later.
func NewSigner(key crypto.Signer) (ssh.Signer, error) {
	if err := checkKey(key.Public(), "CA"); err != nil {
		return nil, err
	}
	s, err := ssh.NewSignerFromSigner(key)
	if err != nil {
		return nil, errs.Wrap(errs.Rejected, err, "the CA key cannot sign SSH certificates")
	}
	if s.PublicKey().Type() == ssh.KeyAlgoRSA {
		as, ok := s.(ssh.AlgorithmSigner)
		if !ok {
			return nil, errs.New(errs.Internal, "RSA signer cannot choose its algorithm")
		}
		if s, err = ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSASHA512}); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "RSA CA key")
		}
	}
	return s, nil
}

// checkKey refuses weak and unknown keys, as CA or subject keys.
func checkKey(pub crypto.PublicKey, role string) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return errs.New(errs.Rejected, "RSA %s keys must have 2048 to 8192 bits, this one has %d", role, n)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() && k.Curve != elliptic.P521() {
			return errs.New(errs.Rejected, "ECDSA %s keys must be on P-256, P-384 or P-521", role)
		}
	case ed25519.PublicKey:
	default:
		return errs.New(errs.Rejected, "%s keys of type %T are not supported; use Ed25519, ECDSA or RSA", role, pub)
	}
	return nil
}

// KeyRecord describes a CA key for the store: its fingerprint and public
// key as OpenSSH writes them. The caller sets the authority and state.
func KeyRecord(uri string, key crypto.Signer) (store.SSHKey, error) {
	s, err := NewSigner(key)
	if err != nil {
		return store.SSHKey{}, err
	}
	return store.SSHKey{
		KeyURI: uri, Fingerprint: ssh.FingerprintSHA256(s.PublicKey()),
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))),
	}, nil
}
