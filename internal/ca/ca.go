// Package ca is signet's one issuance path for X.509. Every certificate,
// whoever asks for it (CLI, API, ACME), passes Issue: policy → profile →
// lint → sign → record → return. It and sshca (SSH certificates) are the
// only packages that ask a CA key to sign.
package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/lazymap"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
)

// RootPurpose is the purpose recorded for the self-signed root.
const RootPurpose = "root"

// RootName is the name under which the root is stored.
const RootName = "root"

// Defaults for validity when an authority or request does not say.
const (
	DefaultLeafValidity      = 30 * 24 * time.Hour
	DefaultMaxLeafValidity   = 90 * 24 * time.Hour
	DefaultRootValidity      = 20 * 365 * 24 * time.Hour
	DefaultAuthorityValidity = 10 * 365 * 24 * time.Hour
	backdate                 = time.Minute
)

// Keys opens CA keys by URI, and locks, unlocks and locates them.
// kms.Manager implements it.
type Keys interface {
	Signer(ctx context.Context, uri string) (crypto.Signer, error)
	Drop(uri string)
	Lock(target string)
	Unlock(ctx context.Context, target string, secret []byte, force bool) error
	Locate(uri string) kms.Location
}

// Store is the part of the store the CA uses: its authorities and their
// settings, the certificates it issues and revokes, and its audit events.
type Store interface {
	CreateAuthority(ctx context.Context, a store.Authority, ev audit.Event) error
	CreateSSHAuthority(ctx context.Context, a store.Authority, k store.SSHKey, ev audit.Event) error
	Authority(ctx context.Context, name string) (store.Authority, error)
	Authorities(ctx context.Context) ([]store.Authority, error)
	ChangeAuthority(ctx context.Context, name string, ch store.AuthorityChange, ev audit.Event) error
	RecordCertificate(ctx context.Context, c store.Certificate, ev audit.Event) error
	Certificate(ctx context.Context, serial string) (store.Certificate, error)
	Revoke(ctx context.Context, serial string, at time.Time, reason int, ev audit.Event) error
	NextCRLNumbers(ctx context.Context, authority string, shards []int) ([]int64, error)
	AppendEvent(ctx context.Context, ev audit.Event) error
}

// Options are what a CA is built from.
type Options struct {
	Store Store
	Keys  Keys
	Lint  Linter
	Clock func() time.Time // nil: time.Now
	// BaseURL is where authorities without their own base URL have their
	// CRLs, OCSP responder and certificate served; "": DefaultBaseURL.
	BaseURL string
}

// CA issues certificates for the authorities held in its store.
type CA struct {
	store Store
	keys  Keys
	lint  Linter
	now   func() time.Time
	base  string

	changeMu sync.Mutex
	changed  chan struct{} // closed and replaced at every revocation
	issued   atomic.Pointer[[]func(store.CertStatus)]

	auths    lazymap.Map[*authority] // loaded authorities, read without a lock
	states   states                  // each authority's state as last seen
	disabled sync.Map                // name → disabledAt

	// crlExtensions, when set (tests), replaces the extensions of each CRL
	// as the gate's prepare step makes it.
	crlExtensions func([]byte) []byte

	obs atomic.Pointer[Observer]
}

// Observer is told of each X.509 issuance attempt and each signature of
// a CA key (package metrics).
type Observer interface {
	Issuance(authority, purpose, outcome string, d time.Duration)
	// Signature: a CA key of backend (software, pkcs11) on token (its
	// label; "" for software keys) signed in d, or failed to (err).
	Signature(backend, token string, d time.Duration, err error)
	// KeyError: a CA key could not be opened (not when it is locked).
	KeyError(backend, token string)
}

// signed returns what tells the observer, if any, of the signatures of
// the key at uri.
func (c *CA) signed(uri string) func(time.Duration, error) {
	backend, token := kms.Backend(uri)
	return func(d time.Duration, err error) {
		if o := c.obs.Load(); o != nil {
			(*o).Signature(backend, token, d, err)
		}
	}
}

// Observe sets who is told of each issuance attempt.
func (c *CA) Observe(o Observer) { c.obs.Store(&o) }

// New returns a CA over the given store, keys and lint gate.
func New(o Options) *CA {
	c := &CA{store: o.Store, keys: o.Keys, lint: o.Lint, now: o.Clock, base: o.BaseURL, changed: make(chan struct{})}
	if c.now == nil {
		c.now = time.Now
	}
	if c.base == "" {
		c.base = DefaultBaseURL
	}
	return c
}

// authority is a loaded authority, ready to sign.
type authority struct {
	rec     store.Authority
	purpose profile.Purpose
	policy  policy.Policy
	cert    *x509.Certificate
	iss     *issuer
	chain   [][]byte // this authority's certificate up to, not including, the root
}

// authority returns a loaded authority, loading it (opening its key) on
// first use; its state follows what the load found.
func (c *CA) authority(ctx context.Context, name string) (*authority, error) {
	a, err := c.auths.Get(name, func() (*authority, error) {
		a, err := c.load(ctx, name)
		switch k := errs.KindOf(err); {
		case err == nil:
			c.states.set(name, AuthorityState{State: Unlocked})
		case k == errs.Locked || k == errs.Unavailable:
			c.states.set(name, stateOf(err))
		}
		return a, err
	})
	return a, err
}

// load reads an authority, opens its key and checks the key matches its
// certificate. Loads of one CA are serialised.
func (c *CA) load(ctx context.Context, name string) (*authority, error) {
	rec, err := c.store.Authority(ctx, name)
	if err != nil {
		return nil, err
	}
	if profile.Purpose(rec.Purpose).IsSSH() {
		return nil, errs.New(errs.Rejected, "authority %q issues SSH certificates: use 'signet ssh sign' or the /ssh/certificates API", name)
	}
	cert, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "authority %q: stored certificate", name)
	}
	signer, err := c.keys.Signer(ctx, rec.KeyURI)
	switch k := errs.KindOf(err); {
	case k == errs.Locked:
		return nil, errs.Wrap(errs.Locked, err, "authority %q is locked", name)
	case err != nil:
		// Missing, refused, on a token that is not there: this authority
		// cannot sign until its key is back; the others still do.
		if o := c.obs.Load(); o != nil {
			(*o).KeyError(kms.Backend(rec.KeyURI))
		}
		return nil, errs.Wrap(errs.Unavailable, err, "authority %q cannot sign now", name)
	}
	iss, err := newIssuer(cert, signer)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "authority %q: key %s", name, kms.Redact(rec.KeyURI))
	}
	iss.failed = func(err error) { c.failed(rec, err) }
	iss.signed = c.signed(rec.KeyURI)
	a := &authority{rec: rec, cert: cert, iss: iss}
	if a.policy, err = policy.Parse(rec.Policy); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "authority %q: stored policy", name)
	}
	if rec.Purpose != RootPurpose {
		if a.purpose, err = profile.ParsePurpose(rec.Purpose); err != nil {
			return nil, err
		}
	}
	if a.chain, err = c.Chain(ctx, name); err != nil {
		return nil, err
	}
	return a, nil
}

var authorityName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// newSerial returns a random positive serial of 16 octets with 126 bits of
// entropy: the top bit is clear (positive) and the next one set (always 16
// octets, never zero). CA/B Forum BR 7.1 asks for at least 64.
func newSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "serial")
	}
	b[0] &= 0x7f
	b[0] |= 0x40
	return new(big.Int).SetBytes(b), nil
}

// Serial renders a serial the way signet names certificates: lowercase hex.
func Serial(n *big.Int) string { return hex.EncodeToString(n.Bytes()) }

func fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// event stamps e, whose fields are named at the call, with the CA's clock.
func (c *CA) event(e audit.Event, data any) audit.Event { return e.Stamp(c.now(), data) }
