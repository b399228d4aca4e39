// Package orders is the ACME order layer: the one place an order, its
// authorizations and their challenges change state (RFC 8555 §7.1.6),
// from creation through validation to finalization, over the store. The
// HTTP front end (acme/wfe) decodes, authenticates and renders; it asks
// this package to change an order and acme/va runs the validations this
// package starts. Boulder gives this role to its registration authority.
package orders

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"signet/internal/acme"
	"signet/internal/acme/va"
	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/limits"
	"signet/internal/metrics"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
)

// Validator checks challenges; *va.VA is one.
type Validator interface {
	Validate(ctx context.Context, typ string, id acme.Identifier, token, keyAuth string) error
}

var _ Validator = (*va.VA)(nil)

// Issuer issues certificates; *ca.CA is one.
type Issuer interface {
	Issue(ctx context.Context, req ca.Request) (*ca.Issued, error)
}

var _ Issuer = (*ca.CA)(nil)

// Store is the part of the store the order layer uses.
type Store interface {
	Certificate(ctx context.Context, serial string) (store.Certificate, error)
	CreateACMEOrder(ctx context.Context, o store.ACMEOrder, ev audit.Event) error
	ACMEOrder(ctx context.Context, id string) (store.ACMEOrder, error)
	ACMEOrders(ctx context.Context, f store.ACMEOrderFilter) ([]store.ACMEOrder, error)
	UpdateACMEOrder(ctx context.Context, o store.ACMEOrder, ev audit.Event) error
	DeleteStaleACMEOrders(ctx context.Context, t time.Time, limit int) (int64, error)
	ACMEAccountLoad(ctx context.Context, accountID string, since, now time.Time) (store.ACMEAccountLoad, error)
	ReusableACMEOrders(ctx context.Context, accountID string, keys []string, now time.Time, limit int) ([]store.ACMEOrder, error)
}

// Options configure the order layer.
type Options struct {
	Store Store
	CA    Issuer
	VA    Validator
	Log   *slog.Logger
	Clock func() time.Time // nil: time.Now
	// Lifetime is how long an order and its authorizations stay usable
	// (default 24h).
	Lifetime time.Duration
	// Limits are the rate limits on orders, validations and certificates;
	// nil limits nothing but the identifiers per order.
	Limits *limits.Limits
	// AuthzReuse is how long after its validation a valid authorization
	// is reused by new orders of its account for the same identifier
	// (its own expiry); 0: never, every order validates anew.
	AuthzReuse time.Duration
	// Metrics counts validations; nil counts nothing.
	Metrics *metrics.ACME
}

// Authority is an authority as its orders see it.
type Authority struct {
	Name     string
	Policy   policy.Policy
	SKI      []byte // its subject key identifier: the AKI of what it issues
	Profiles map[string]Profile
}

// Profile is what a profile name selects (draft-ietf-acme-profiles).
type Profile struct {
	Description string
	Usage       profile.Usage
	Validity    time.Duration // 0: the authority's default
}

// Book keeps the orders of every authority a node serves.
type Book struct {
	o     Options
	store Store
	log   *slog.Logger
	now   func() time.Time

	// inflight holds the validations and finalizations this node is
	// running, so that a client's repeated POSTs do not start a second one.
	inflight sync.Map
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgStop   context.CancelFunc
}

// New starts the order layer; Close stops its background work.
func New(ctx context.Context, o Options) *Book {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Lifetime == 0 {
		o.Lifetime = 24 * time.Hour
	}
	b := &Book{o: o, store: o.Store, log: o.Log, now: o.Clock}
	b.bgCtx, b.bgStop = context.WithCancel(context.WithoutCancel(ctx))
	b.bg.Add(1)
	go b.cleanup()
	return b
}

// Close stops background work and waits for running validations.
func (b *Book) Close() {
	b.bgStop()
	b.bg.Wait()
}

// Status is an order's status now: the stored one once finalization has
// begun or an authorization failed, else what its authorizations and
// expiry make it (§7.1.6).
func (b *Book) Status(o *store.ACMEOrder) string {
	switch o.Status {
	case store.StatusProcessing, store.StatusValid, store.StatusInvalid:
		return o.Status
	}
	if b.now().After(o.Expires) {
		return store.StatusInvalid
	}
	return byAuthzs(o)
}

// byAuthzs is what o's authorizations make a pending order: ready when
// all are valid, invalid when one failed or was deactivated, else pending.
func byAuthzs(o *store.ACMEOrder) string {
	ready := true
	for i := range o.Authzs {
		switch o.Authzs[i].Status {
		case store.StatusValid:
		case store.StatusPending:
			ready = false
		default:
			return store.StatusInvalid
		}
	}
	if ready {
		return store.StatusReady
	}
	return store.StatusPending
}

// settle sets the status o is stored with before a write that may change
// its authorizations, so that the store's counts (signet_acme_orders) tell
// ready and failed orders from pending ones. Expiry is not stored: it
// comes with time, and the counts read it from the order's expires.
func settle(o *store.ACMEOrder) {
	if o.Status == store.StatusPending || o.Status == store.StatusReady {
		o.Status = byAuthzs(o)
	}
}

// AuthzStatus is authorization n's status now: pending and valid ones
// expire with their order, or a valid one at its own expiry (§7.1.6).
func (b *Book) AuthzStatus(o *store.ACMEOrder, n int) string {
	s := o.Authzs[n].Status
	if (s == store.StatusPending || s == store.StatusValid) && b.now().After(AuthzExpires(o, n)) {
		return store.StatusExpired
	}
	return s
}

// AuthzExpires is when authorization n of o expires: at its own expiry
// if it has one, else with its order.
func AuthzExpires(o *store.ACMEOrder, n int) time.Time {
	if t := o.Authzs[n].Expires; !t.IsZero() {
		return t
	}
	return o.Expires
}

// Order reads an order of authority a that account owns. Another
// account's order is refused as unauthorized, never shown.
func (b *Book) Order(ctx context.Context, a *Authority, account, id string) (store.ACMEOrder, error) {
	o, err := b.store.ACMEOrder(ctx, id)
	if err == nil && o.Authority != a.Name {
		err = errs.New(errs.NotFound, "order %s not found", id)
	}
	if err != nil {
		return o, err
	}
	if o.AccountID != account {
		return o, acme.Errorf(acme.Unauthorized, errs.Unauthorized, "order %s belongs to another account", id)
	}
	return o, nil
}

// Deactivate moves authorization n of o, pending or valid, to deactivated
// (§7.5.2), which makes the order invalid, with its acme.authz.deactivate
// event.
func (b *Book) Deactivate(ctx context.Context, o store.ACMEOrder, n int) (store.ACMEOrder, error) {
	if s := b.AuthzStatus(&o, n); s != store.StatusPending && s != store.StatusValid {
		return o, errs.New(errs.Malformed, "a %s authorization cannot be deactivated", s)
	}
	o = clone(o)
	o.Authzs[n].Status = store.StatusDeactivated
	settle(&o)
	ev := event(audit.KindACMEAuthzDeactivate, &o, map[string]any{"authz": n, "identifier": o.Authzs[n].Identifier})
	if err := b.store.UpdateACMEOrder(ctx, o, ev); err != nil {
		return o, err
	}
	o.Version++
	return o, nil
}

// event is the audit event of a transition of o, which its account asked for.
func event(kind string, o *store.ACMEOrder, data map[string]any) audit.Event {
	b, _ := json.Marshal(data)
	return audit.Event{Kind: kind, Actor: "acme:" + o.AccountID, Data: b}
}

// clone copies o with its authorizations and challenges, so that a
// transition leaves the caller's order as it was.
func clone(o store.ACMEOrder) store.ACMEOrder {
	o.Authzs = slices.Clone(o.Authzs)
	for i := range o.Authzs {
		o.Authzs[i].Challenges = slices.Clone(o.Authzs[i].Challenges)
	}
	return o
}

// pruneBatch bounds the orders one transaction of Prune deletes, so that
// pruning a large backlog never holds the store's writer for long.
const pruneBatch = 1000

// Prune deletes, in batches of pruneBatch, the orders and their
// authorizations that expired more than an order lifetime ago without a
// certificate, or whose certificate did; it returns how many went.
func (b *Book) Prune(ctx context.Context) (int64, error) {
	var total int64
	for ctx.Err() == nil {
		n, err := b.store.DeleteStaleACMEOrders(ctx, b.now().Add(-b.o.Lifetime), pruneBatch)
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
	return total, ctx.Err()
}

// cleanup prunes stale orders now and then; one node doing it is enough,
// several doing it is harmless.
func (b *Book) cleanup() {
	defer b.bg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := b.Prune(b.bgCtx); err != nil && b.bgCtx.Err() == nil {
			b.log.Warn("acme: deleting stale orders", "err", err)
		} else if n > 0 {
			b.log.Info("acme: deleted stale orders", "count", n)
		}
		select {
		case <-b.bgCtx.Done():
			return
		case <-t.C:
		}
	}
}
