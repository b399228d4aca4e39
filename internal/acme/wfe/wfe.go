// Package wfe is the ACME server's web front end (RFC 8555, RFC 9773): it
// parses and verifies JWS requests, hands out nonces, runs the order and
// authorization state machine over the store, asks acme/va to validate and
// ca.Issue to issue. It never signs anything itself.
package wfe

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"signet/internal/acme"
	"signet/internal/acme/va"
	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/lazymap"
	"signet/internal/limits"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
)

// Prefix is where the ACME server is mounted: Prefix + "<authority>/directory".
const Prefix = "/acme/"

// Validator checks challenges; *va.VA is one.
type Validator interface {
	Validate(ctx context.Context, typ string, id acme.Identifier, token, keyAuth string) error
}

var _ Validator = (*va.VA)(nil)

// Store is the part of the store the front end uses: the ACME state, and
// the authorities and certificates it serves.
type Store interface {
	Authority(ctx context.Context, name string) (store.Authority, error)
	Certificate(ctx context.Context, serial string) (store.Certificate, error)

	CreateACMEAccount(ctx context.Context, a store.ACMEAccount, ev audit.Event) error
	ACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error)
	ACMEAccountByKey(ctx context.Context, authority, keyID string) (store.ACMEAccount, error)
	UpdateACMEAccountContacts(ctx context.Context, a store.ACMEAccount, contacts []string, ev audit.Event) error
	ChangeACMEAccountKey(ctx context.Context, a store.ACMEAccount, keyID string, key []byte, ev audit.Event) error
	DeactivateACMEAccount(ctx context.Context, a store.ACMEAccount, ev audit.Event) error
	CreateACMEOrder(ctx context.Context, o store.ACMEOrder) error
	ACMEOrder(ctx context.Context, id string) (store.ACMEOrder, error)
	ACMEOrders(ctx context.Context, f store.ACMEOrderFilter) ([]store.ACMEOrder, error)
	UpdateACMEOrder(ctx context.Context, o store.ACMEOrder) error
	DeleteStaleACMEOrders(ctx context.Context, t time.Time, limit int) (int64, error)
	ACMEAccountLoad(ctx context.Context, accountID string, since, now time.Time) (store.ACMEAccountLoad, error)
	EABKey(ctx context.Context, id string) (store.EABKey, error)
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)
}

// Options configure the front end.
type Options struct {
	CA    *ca.CA
	Store Store
	VA    Validator
	Log   *slog.Logger
	Clock func() time.Time // nil: time.Now
	// AdminAuthority is never served, whatever its ACME setting: its
	// certificates are administrators of the API.
	AdminAuthority string
	// UnsealEAB opens a stored EAB key; required when EAB keys exist.
	UnsealEAB func(kid string, sealed []byte) ([]byte, error)
	// OrderLifetime is how long an order and its authorizations stay
	// usable (default 24h); NonceLifetime how long a nonce does (5m).
	OrderLifetime time.Duration
	NonceLifetime time.Duration
	// Limits are the rate limits; nil limits nothing but the identifiers
	// of an order (100).
	Limits *limits.Limits
	// ValidationWait is how long a challenge POST waits for its validation
	// before answering "processing" (default 2s): most validations take
	// milliseconds, and waiting spares the client a poll.
	ValidationWait time.Duration
}

// WFE serves /acme/<authority>/...
type WFE struct {
	o      Options
	store  Store
	log    *slog.Logger
	now    func() time.Time
	nonces *nonces
	mux    *http.ServeMux

	auths    lazymap.Map[*authority] // loaded on first request, read without a lock
	settings settingsCache
	accounts accountCache

	// inflight holds the challenges and finalizations this node is working
	// on, so a client's repeated POSTs do not start a second one.
	inflight sync.Map
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgStop   context.CancelFunc
}

// New builds the front end. The nonce key comes from the store, so every
// node sharing it accepts the others' nonces.
func New(ctx context.Context, o Options) (*WFE, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.OrderLifetime == 0 {
		o.OrderLifetime = 24 * time.Hour
	}
	if o.NonceLifetime == 0 {
		o.NonceLifetime = 5 * time.Minute
	}
	if o.ValidationWait == 0 {
		o.ValidationWait = 2 * time.Second
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	key, err := o.Store.Secret(ctx, "acme-nonce-hmac", fresh)
	if err != nil {
		return nil, err
	}
	w := &WFE{o: o, store: o.Store, log: o.Log, now: o.Clock, nonces: newNonces(key, o.NonceLifetime, o.Clock),
		mux: http.NewServeMux()}
	for _, warning := range w.Warnings(ctx) {
		w.log.Warn("acme: " + warning)
	}
	w.bgCtx, w.bgStop = context.WithCancel(context.WithoutCancel(ctx))
	m := w.mux
	m.HandleFunc("GET /acme/{auth}/directory", w.withAuthority(w.directory))
	m.HandleFunc("HEAD /acme/{auth}/new-nonce", w.withAuthority(w.newNonce))
	m.HandleFunc("GET /acme/{auth}/new-nonce", w.withAuthority(w.newNonce))
	m.HandleFunc("POST /acme/{auth}/directory", w.postAsGet(w.directory))
	m.HandleFunc("POST /acme/{auth}/new-nonce", w.postAsGet(w.newNonce))
	m.HandleFunc("POST /acme/{auth}/new-account", w.post(byJWK, w.newAccount))
	m.HandleFunc("POST /acme/{auth}/account/{id}", w.post(byKID, w.account))
	m.HandleFunc("POST /acme/{auth}/account/{id}/orders", w.post(byKID, w.orders))
	m.HandleFunc("POST /acme/{auth}/key-change", w.post(byKID, w.keyChange))
	m.HandleFunc("POST /acme/{auth}/new-order", w.post(byKID, w.newOrder))
	m.HandleFunc("POST /acme/{auth}/order/{id}", w.post(byKID, w.order))
	m.HandleFunc("POST /acme/{auth}/order/{id}/finalize", w.post(byKID, w.finalize))
	m.HandleFunc("POST /acme/{auth}/authz/{id}/{n}", w.post(byKID, w.authz))
	m.HandleFunc("POST /acme/{auth}/chall/{id}/{n}/{type}", w.post(byKID, w.challenge))
	m.HandleFunc("POST /acme/{auth}/cert/{id}", w.post(byKID, w.certificate))
	m.HandleFunc("POST /acme/{auth}/revoke-cert", w.post(either, w.revoke))
	m.HandleFunc("GET /acme/{auth}/renewal-info/{certid}", w.renewalInfo)
	m.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		w.writeProblem(rw, r, errs.New(errs.NotFound, "no such ACME resource: %s %s", r.Method, r.URL.Path))
	})
	w.bg.Add(1)
	go w.cleanup()
	return w, nil
}

// Close stops background work and waits for running validations.
func (w *WFE) Close() {
	w.bgStop()
	w.bg.Wait()
}

// ServeHTTP implements http.Handler.
func (w *WFE) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	h := rw.Header()
	h["Replay-Nonce"] = []string{w.nonces.New()}
	h["Cache-Control"] = []string{"no-store"}
	w.mux.ServeHTTP(rw, r)
}

// authority is an authority as the ACME server uses it.
type authority struct {
	name     string
	prefix   string // "/acme/<name>"
	policy   policy.Policy
	purpose  profile.Purpose
	profiles map[string]orderProfile
	chain    [][]byte // the authority's certificate up to, not including, the root
	ski      []byte   // its subject key identifier: the AKI of what it issues
	maxValid time.Duration
}

// orderProfile is what a profile name selects (draft-ietf-acme-profiles).
type orderProfile struct {
	description string
	usage       profile.Usage
	validity    time.Duration // 0: the authority's default
}

// authority loads and caches what the front end needs of an authority,
// once it has checked that the authority serves ACME now (settings.go).
func (w *WFE) authority(ctx context.Context, name string) (*authority, error) {
	if err := w.served(ctx, name); err != nil {
		return nil, err
	}
	return w.auths.Get(name, func() (*authority, error) { return w.loadAuthority(ctx, name) })
}

func (w *WFE) loadAuthority(ctx context.Context, name string) (*authority, error) {
	rec, err := w.store.Authority(ctx, name)
	if err != nil {
		return nil, errs.Wrap(errs.NotFound, err, "no ACME server for authority %q", name)
	}
	if rec.Purpose == ca.RootPurpose {
		return nil, errs.New(errs.NotFound, "the root does not issue over ACME; use an issuing authority")
	}
	p, err := profile.ParsePurpose(rec.Purpose)
	if err != nil || p.IsSSH() {
		return nil, errs.New(errs.NotFound, "authority %q (%s) does not issue X.509 over ACME", name, rec.Purpose)
	}
	a := &authority{name: name, prefix: "/acme/" + name, purpose: p, maxValid: rec.MaxValidity, profiles: map[string]orderProfile{}}
	if len(rec.Policy) > 0 {
		if err := json.Unmarshal(rec.Policy, &a.policy); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "policy of authority %q", name)
		}
	}
	if a.chain, err = w.o.CA.Chain(ctx, name); err != nil {
		return nil, err
	}
	if len(a.chain) > 0 {
		if c, err := x509.ParseCertificate(a.chain[0]); err == nil {
			a.ski = c.SubjectKeyId
		}
	}
	usages := p.Usages()
	a.profiles["default"] = orderProfile{description: "the authority's default " + string(usages[0]) + " certificate", usage: usages[0]}
	short := 7 * 24 * time.Hour
	if rec.MaxValidity > 0 && rec.MaxValidity < short {
		short = rec.MaxValidity
	}
	a.profiles["shortlived"] = orderProfile{description: "a " + string(usages[0]) + " certificate valid for " + short.String(), usage: usages[0], validity: short}
	for _, u := range usages[1:] {
		a.profiles[string(u)] = orderProfile{description: "a " + string(u) + " certificate", usage: u}
	}
	return a, nil
}

// base is the scheme and host the client used; every URL is built from it.
func (w *WFE) base(r *http.Request) string { return "https://" + r.Host }

func (w *WFE) reqAuthority(rw http.ResponseWriter, r *http.Request) *authority {
	a, err := w.authority(r.Context(), r.PathValue("auth"))
	if err != nil {
		w.writeProblem(rw, r, err)
		return nil
	}
	rw.Header().Set("Link", `<`+w.base(r)+a.prefix+`/directory>;rel="index"`)
	return a
}

// response is what a POST handler answers.
type response struct {
	status   int
	body     any    // JSON
	raw      []byte // or raw bytes with contentType
	ctype    string
	location string
	retry    int // Retry-After seconds, 0: none
	links    []string
}

// post wraps a handler of signed requests.
func (w *WFE) post(mode keyMode, h func(r *http.Request, req *request) (*response, error)) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		a := w.reqAuthority(rw, r)
		if a == nil {
			return
		}
		req, err := w.verify(rw, r, a, mode)
		if err != nil {
			w.writeProblem(rw, r, err)
			return
		}
		resp, err := h(r, req)
		if err != nil {
			w.writeProblem(rw, r, err)
			return
		}
		hd := rw.Header()
		if resp.location != "" {
			hd.Set("Location", resp.location)
		}
		if resp.retry > 0 {
			hd.Set("Retry-After", strconv.Itoa(resp.retry))
		}
		for _, l := range resp.links {
			hd.Add("Link", l)
		}
		status := resp.status
		if status == 0 {
			status = http.StatusOK
		}
		if resp.raw != nil {
			if resp.ctype != "" {
				hd.Set("Content-Type", resp.ctype)
			}
			rw.WriteHeader(status)
			rw.Write(resp.raw)
			return
		}
		writeJSON(rw, status, resp.body)
	}
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(rw, "encoding error", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	rw.Write(b)
}

// withAuthority serves a GET of a resource of the authority in the path.
func (w *WFE) withAuthority(get func(http.ResponseWriter, *http.Request, *authority)) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		if a := w.reqAuthority(rw, r); a != nil {
			get(rw, r, a)
		}
	}
}

func (w *WFE) directory(rw http.ResponseWriter, r *http.Request, a *authority) {
	b := w.base(r) + a.prefix
	d := acme.Directory{
		NewNonce: b + "/new-nonce", NewAccount: b + "/new-account", NewOrder: b + "/new-order",
		RevokeCert: b + "/revoke-cert", KeyChange: b + "/key-change", RenewalInfo: b + "/renewal-info",
		Meta: acme.Meta{ExternalAccountRequired: w.requiresEAB(r.Context(), a.name), Profiles: map[string]string{}},
	}
	for n, p := range a.profiles {
		d.Meta.Profiles[n] = p.description
	}
	writeJSON(rw, http.StatusOK, d)
}

// postAsGet serves a POST-as-GET of a resource that is also served to
// plain GET (the directory and newNonce, RFC 8555 §6.3): signed by an
// account or a key, with an empty payload.
func (w *WFE) postAsGet(get func(http.ResponseWriter, *http.Request, *authority)) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		a := w.reqAuthority(rw, r)
		if a == nil {
			return
		}
		req, err := w.verify(rw, r, a, either)
		if err == nil && len(req.payload) > 0 {
			err = errs.New(errs.Malformed, "a POST-as-GET has an empty payload")
		}
		if err != nil {
			w.writeProblem(rw, r, err)
			return
		}
		g := r.Clone(r.Context())
		g.Method = http.MethodGet
		get(rw, g, a)
	}
}

func (w *WFE) newNonce(rw http.ResponseWriter, r *http.Request, _ *authority) {
	if r.Method == http.MethodGet {
		rw.WriteHeader(http.StatusNoContent)
		return
	}
	rw.WriteHeader(http.StatusOK)
}

// pruneBatch bounds the orders one transaction of Prune deletes, so that
// pruning a large backlog never holds the store's writer for long.
const pruneBatch = 1000

// cleanup prunes stale orders now and then; one node doing it is enough,
// several doing it is harmless.
func (w *WFE) cleanup() {
	defer w.bg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := w.Prune(w.bgCtx); err != nil && w.bgCtx.Err() == nil {
			w.log.Warn("acme: deleting stale orders", "err", err)
		} else if n > 0 {
			w.log.Info("acme: deleted stale orders", "count", n)
		}
		select {
		case <-w.bgCtx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune deletes, in batches of pruneBatch, the orders and their
// authorizations that expired more than an order lifetime ago without a
// certificate, or whose certificate did; it returns how many went.
func (w *WFE) Prune(ctx context.Context) (int64, error) {
	var total int64
	for ctx.Err() == nil {
		n, err := w.store.DeleteStaleACMEOrders(ctx, w.now().Add(-w.o.OrderLifetime), pruneBatch)
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
	return total, ctx.Err()
}

// newID returns a random URL-safe identifier with 128 bits of entropy.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newOrderID returns an order identifier that sorts by creation time: 48
// bits of Unix milliseconds, then 80 random bits, in hex (which sorts as
// the bytes do). Orders are created by the thousand: in time order each
// new one lands on the last page of the store's indexes on the id,
// instead of a random page that the commit must write. 80 random bits
// keep them unguessable; they grant nothing anyway without the account key.
func newOrderID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

// newToken returns a challenge token (RFC 8555 §8.1: ≥128 bits, base64url).
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (a *authority) url(r *http.Request, w *WFE, parts ...string) string {
	return w.base(r) + a.prefix + "/" + strings.Join(parts, "/")
}
