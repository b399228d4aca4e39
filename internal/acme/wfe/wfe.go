// Package wfe is the ACME server's web front end (RFC 8555, RFC 9773): it
// parses and verifies JWS requests, hands out nonces, keeps accounts, and
// asks acme/orders, the order layer, to create, validate and finalize
// orders; it renders what they answer. It never signs anything itself.
package wfe

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"signet/internal/acme"
	"signet/internal/acme/orders"
	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/lazymap"
	"signet/internal/limits"
	"signet/internal/metrics"
	"signet/internal/nonce"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
)

// Prefix is where the ACME server is mounted: Prefix + "<authority>/directory".
const Prefix = "/acme/"

// Validator checks challenges; *va.VA is one.
type Validator = orders.Validator

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
	CreateACMEOrder(ctx context.Context, o store.ACMEOrder, ev audit.Event) error
	ACMEOrder(ctx context.Context, id string) (store.ACMEOrder, error)
	ACMEOrders(ctx context.Context, f store.ACMEOrderFilter) ([]store.ACMEOrder, error)
	UpdateACMEOrder(ctx context.Context, o store.ACMEOrder, ev audit.Event) error
	DeleteStaleACMEOrders(ctx context.Context, t time.Time, limit int) (int64, error)
	ACMEAccountLoad(ctx context.Context, accountID string, since, now time.Time) (store.ACMEAccountLoad, error)
	ReusableACMEOrders(ctx context.Context, accountID string, keys []string, now time.Time, limit int) ([]store.ACMEOrder, error)
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
	// AuthzReuse is how long a valid authorization is reused by new
	// orders of its account (orders.Options.AuthzReuse); 0: never.
	AuthzReuse time.Duration
	// Limits are the rate limits; nil limits nothing but the identifiers
	// of an order (100).
	Limits *limits.Limits
	// ValidationWait is how long a challenge POST waits for its validation
	// before answering "processing" (default 2s): most validations take
	// milliseconds, and waiting spares the client a poll.
	ValidationWait time.Duration
	// Metrics counts requests by endpoint and problem type, and
	// validations; nil counts nothing.
	Metrics *metrics.ACME
}

// WFE serves /acme/<authority>/...
type WFE struct {
	o      Options
	store  Store
	log    *slog.Logger
	now    func() time.Time
	nonces *nonce.Nonces
	mux    *http.ServeMux
	// endpoints are the request counters by route pattern, resolved when
	// the routes are registered; "" (no route matched) counts as other.
	endpoints map[string]*metrics.Endpoint

	auths    lazymap.Map[*authority] // loaded on first request, read without a lock
	settings settingsCache
	accounts accountCache
	book     *orders.Book
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
	w := &WFE{o: o, store: o.Store, log: o.Log, now: o.Clock, nonces: nonce.New(key, o.NonceLifetime, o.Clock),
		mux: http.NewServeMux(), endpoints: map[string]*metrics.Endpoint{}}
	for _, warning := range w.Warnings(ctx) {
		w.log.Warn("acme: " + warning)
	}
	w.book = orders.New(ctx, orders.Options{Store: o.Store, CA: o.CA, VA: o.VA, Log: o.Log, Clock: o.Clock, Lifetime: o.OrderLifetime, Limits: o.Limits,
		AuthzReuse: o.AuthzReuse, Metrics: o.Metrics})
	m := route{w}
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
	other := o.Metrics.Endpoint("other")
	w.endpoints[""] = other // the mux's own answers: a method not allowed
	w.mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		w.writeProblem(rw, r, errs.New(errs.NotFound, "no such ACME resource: %s %s", r.Method, r.URL.Path))
	})
	w.endpoints["/"] = other
	return w, nil
}

// route registers the front end's handlers with their request counters.
type route struct{ w *WFE }

func (m route) HandleFunc(pattern string, h http.HandlerFunc) {
	m.w.mux.HandleFunc(pattern, h)
	m.w.endpoints[pattern] = m.w.o.Metrics.Endpoint(pattern)
}

// Close stops background work and waits for running validations.
func (w *WFE) Close() { w.book.Close() }

// ServeHTTP implements http.Handler.
func (w *WFE) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	h := rw.Header()
	h["Replay-Nonce"] = []string{w.nonces.New()}
	h["Cache-Control"] = []string{"no-store"}
	w.mux.ServeHTTP(rw, r)
	// The mux has set r.Pattern: a route, never the requested path.
	// writeProblem counted the requests it answered.
	if ct := h["Content-Type"]; len(ct) == 0 || ct[0] != problemType {
		w.endpoints[r.Pattern].Answered()
	}
}

// authority is an authority as the ACME server uses it.
type authority struct {
	name     string
	prefix   string // "/acme/<name>"
	purpose  profile.Purpose
	chain    [][]byte // the authority's certificate up to, not including, the root
	ski      []byte   // its subject key identifier: the AKI of what it issues
	maxValid time.Duration
	order    orders.Authority // as its orders see it
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
	a := &authority{name: name, prefix: "/acme/" + name, purpose: p, maxValid: rec.MaxValidity}
	profiles := map[string]orders.Profile{}
	var pol policy.Policy
	if len(rec.Policy) > 0 {
		if err := json.Unmarshal(rec.Policy, &pol); err != nil {
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
	profiles["default"] = orders.Profile{Description: "the authority's default " + string(usages[0]) + " certificate", Usage: usages[0]}
	short := 7 * 24 * time.Hour
	if rec.MaxValidity > 0 && rec.MaxValidity < short {
		short = rec.MaxValidity
	}
	profiles["shortlived"] = orders.Profile{Description: "a " + string(usages[0]) + " certificate valid for " + short.String(), Usage: usages[0], Validity: short}
	for _, u := range usages[1:] {
		profiles[string(u)] = orders.Profile{Description: "a " + string(u) + " certificate", Usage: u}
	}
	a.order = orders.Authority{Name: name, Policy: pol, SKI: a.ski, Profiles: profiles}
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
	for n, p := range a.order.Profiles {
		d.Meta.Profiles[n] = p.Description
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

// newID returns a random URL-safe identifier with 128 bits of entropy.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (a *authority) url(r *http.Request, w *WFE, parts ...string) string {
	return w.base(r) + a.prefix + "/" + strings.Join(parts, "/")
}

// Prune deletes the stale orders now (orders.Book.Prune); serve does it
// hourly on its own.
func (w *WFE) Prune(ctx context.Context) (int64, error) { return w.book.Prune(ctx) }
