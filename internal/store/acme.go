package store

import (
	"context"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
)

// ACME is the state of the ACME server (RFC 8555): accounts, orders with
// their authorizations and challenges, external account binding keys and
// node-shared secrets. Orders carry their authorizations: an authorization
// belongs to exactly one order, so one read answers an order, an
// authorization or a challenge, and one write moves them together.
type ACME interface {
	// CreateACMEAccount records a new account and its acme.account.create
	// event. errs.Conflict if the authority already has an account with the
	// same KeyID. With EABKeyID set it also binds that key to the account in
	// the same transaction: errs.NotFound if the key does not exist for the
	// authority, errs.Conflict if it is bound already.
	CreateACMEAccount(ctx context.Context, a ACMEAccount, ev audit.Event) error
	ACMEAccount(ctx context.Context, id string) (ACMEAccount, error)
	ACMEAccountByKey(ctx context.Context, authority, keyID string) (ACMEAccount, error)
	// ACMEAccounts lists accounts matching f, ordered by ID.
	ACMEAccounts(ctx context.Context, f ACMEAccountFilter) ([]ACMEAccount, error)

	// The account changes are compare-and-set, one method per change: a is
	// the account as the caller read it, and each writes only its own
	// columns, with its event, if the stored account is still valid with
	// key a.KeyID. Otherwise errs.Conflict (the caller reads again and
	// decides), or errs.NotFound if the account is gone. Nothing ever makes
	// a deactivated account valid again.

	// UpdateACMEAccountContacts replaces the contacts of account a.
	UpdateACMEAccountContacts(ctx context.Context, a ACMEAccount, contacts []string, ev audit.Event) error
	// ChangeACMEAccountKey rolls account a over from key a.KeyID to
	// keyID, key; errs.Conflict also if another account of the authority
	// has that key.
	ChangeACMEAccountKey(ctx context.Context, a ACMEAccount, keyID string, key []byte, ev audit.Event) error
	// DeactivateACMEAccount deactivates account a for good.
	DeactivateACMEAccount(ctx context.Context, a ACMEAccount, ev audit.Event) error

	// CreateACMEOrder records a new order at Version 1 with its
	// acme.order.create event.
	CreateACMEOrder(ctx context.Context, o ACMEOrder, ev audit.Event) error
	ACMEOrder(ctx context.Context, id string) (ACMEOrder, error)
	// ACMEOrders lists orders matching f, ordered by ID.
	ACMEOrders(ctx context.Context, f ACMEOrderFilter) ([]ACMEOrder, error)
	// UpdateACMEOrder stores o with ev, the event of its transition, if
	// the stored order is still at o.Version, and bumps the version;
	// errs.Conflict if another writer got there first (the caller reads
	// again and decides), errs.NotFound if gone.
	UpdateACMEOrder(ctx context.Context, o ACMEOrder, ev audit.Event) error
	// DeleteStaleACMEOrders removes up to limit orders (with their
	// authorizations) that expired before t and did not end with a
	// certificate, or whose certificate expired before t, and hold no
	// authorization reusable after t. It returns how
	// many went; fewer than limit when no more are stale.
	DeleteStaleACMEOrders(ctx context.Context, t time.Time, limit int) (int64, error)
	// ACMEAccountLoad counts what the rate limits of an account need:
	// its orders created since since, and the pending authorizations of its
	// orders that have not expired by now.
	ACMEAccountLoad(ctx context.Context, accountID string, since, now time.Time) (ACMEAccountLoad, error)
	// ReusableACMEOrders lists up to limit orders of an account that hold
	// a Reusable authorization whose ReuseKey is among keys and that
	// expires after now, the newest first.
	ReusableACMEOrders(ctx context.Context, accountID string, keys []string, now time.Time, limit int) ([]ACMEOrder, error)

	// CreateEABKey records an external account binding key (sealed by the
	// caller) with its acme.eab.create event; errs.Conflict on a duplicate ID.
	CreateEABKey(ctx context.Context, k EABKey, ev audit.Event) error
	EABKey(ctx context.Context, id string) (EABKey, error)

	// Secret returns the secret stored under name, storing value first if
	// there is none, so that every node sharing the store agrees on it.
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)
}

// ACME account statuses (RFC 8555 7.1.2); orders, authorizations and
// challenges use the status words of RFC 8555 7.1.6.
const (
	StatusValid       = "valid"
	StatusDeactivated = "deactivated"
	StatusRevoked     = "revoked"
	StatusPending     = "pending"
	StatusReady       = "ready"
	StatusProcessing  = "processing"
	StatusInvalid     = "invalid"
	StatusExpired     = "expired"
)

// ACMEAccount is an ACME account of one authority.
type ACMEAccount struct {
	ID        string
	Authority string
	KeyID     string // RFC 7638 JWK thumbprint, base64url; unique per authority
	Key       []byte // the public JWK as JSON
	Contacts  []string
	Status    string
	EABKeyID  string // the external account binding key that created it, if any
	CreatedAt time.Time
}

// ACMEIdentifier is an order's identifier: Type "dns" or "ip".
type ACMEIdentifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ACMEChallenge is one way to prove control of an authorization's identifier.
type ACMEChallenge struct {
	Type        string    `json:"type"`
	Token       string    `json:"token"`
	Status      string    `json:"status"`
	Validated   time.Time `json:"validated,omitzero"`
	ErrorType   string    `json:"error_type,omitempty"` // an ACME problem type without its urn prefix
	ErrorDetail string    `json:"error_detail,omitempty"`
}

// ACMEAuthz is an authorization inside an order.
type ACMEAuthz struct {
	Identifier ACMEIdentifier  `json:"identifier"`
	Wildcard   bool            `json:"wildcard,omitempty"`
	Status     string          `json:"status"`
	Challenges []ACMEChallenge `json:"challenges"`
	// Expires is when a valid authorization that later orders of its
	// account may reuse expires (set when it is validated with reuse on);
	// zero: it expires with its order.
	Expires time.Time `json:"expires,omitzero"`
	// Reused is the authorization this one stands for, "order/n": the
	// order reused it, valid, instead of asking for a new validation.
	Reused string `json:"reused,omitempty"`
}

// ACMEOrder is an order with its authorizations.
type ACMEOrder struct {
	ID          string
	Authority   string
	AccountID   string
	Status      string
	Expires     time.Time
	Identifiers []ACMEIdentifier
	Authzs      []ACMEAuthz
	Profile     string
	Replaces    string // serial of the certificate this order replaces (RFC 9773)
	CertSerial  string
	ErrorType   string
	ErrorDetail string
	CreatedAt   time.Time
	Version     int64
}

// ACMEAccountLoad is what an account has asked for lately (ACMEAccountLoad).
type ACMEAccountLoad struct {
	OrdersSince   int
	PendingAuthzs int
}

// Reusable reports whether later orders of its account may reuse az: it
// is valid, its own (not itself reused) and has an expiry of its own.
func (az *ACMEAuthz) Reusable() bool {
	return az.Status == StatusValid && az.Reused == "" && !az.Expires.IsZero()
}

// ReuseKey is what az proves control of, for ReusableACMEOrders:
// "dns:NAME", "dns:*.NAME" for a wildcard, or "ip:ADDR".
func (az *ACMEAuthz) ReuseKey() string {
	if az.Wildcard {
		return az.Identifier.Type + ":*." + az.Identifier.Value
	}
	return az.Identifier.Type + ":" + az.Identifier.Value
}

// PendingAuthzs counts the order's pending authorizations.
func (o ACMEOrder) PendingAuthzs() int {
	n := 0
	for _, az := range o.Authzs {
		if az.Status == StatusPending {
			n++
		}
	}
	return n
}

// ACMEOrderFilter selects orders; zero fields match anything, but at least
// one of AccountID, CertSerial and Replaces must be set.
type ACMEOrderFilter struct {
	AccountID  string
	CertSerial string
	Replaces   string
	AfterID    string // pagination: orders with a greater ID
	Limit      int    // 0: no limit
}

// ACMEAccountFilter selects accounts; zero fields match anything.
type ACMEAccountFilter struct {
	Authority string
	Status    string
	AfterID   string // pagination: accounts with a greater ID
	Limit     int    // 0: no limit
}

// EABKey is an external account binding key. Sealed is the HMAC key as
// encrypted by the caller; the store never sees it in the clear.
type EABKey struct {
	ID        string
	Authority string
	Sealed    []byte
	CreatedAt time.Time
	AccountID string // "" until an account is created with it
}

// CheckACMEOrder refuses an order row that cannot be recorded.
func CheckACMEOrder(o ACMEOrder) error {
	switch {
	case o.ID == "" || o.Authority == "" || o.AccountID == "":
		return errs.New(errs.Malformed, "ACME order needs an ID, an authority and an account")
	case o.Status == "":
		return errs.New(errs.Malformed, "ACME order %s has no status", o.ID)
	case o.Expires.IsZero():
		return errs.New(errs.Malformed, "ACME order %s has no expiry", o.ID)
	case len(o.Identifiers) == 0:
		return errs.New(errs.Malformed, "ACME order %s has no identifiers", o.ID)
	}
	return nil
}

// CheckACMEOrderFilter refuses a filter that would list every order.
func CheckACMEOrderFilter(f ACMEOrderFilter) error {
	if f.AccountID == "" && f.CertSerial == "" && f.Replaces == "" {
		return errs.New(errs.Malformed, "listing ACME orders needs an account, a certificate or a replaced certificate")
	}
	return nil
}

// CheckEABKey refuses an external account binding key row that cannot be
// recorded.
func CheckEABKey(k EABKey) error {
	if k.ID == "" || k.Authority == "" || len(k.Sealed) == 0 {
		return errs.New(errs.Malformed, "external account binding key needs an ID, an authority and a sealed key")
	}
	return nil
}

// CheckSecret refuses a secret that cannot be stored.
func CheckSecret(name string, value []byte) error {
	if name == "" || len(value) == 0 {
		return errs.New(errs.Malformed, "a secret needs a name and a value")
	}
	return nil
}

// CheckACMEAccount refuses an account row that cannot be recorded.
func CheckACMEAccount(a ACMEAccount) error {
	switch {
	case a.ID == "" || a.Authority == "":
		return errs.New(errs.Malformed, "ACME account needs an ID and an authority")
	case a.KeyID == "" || len(a.Key) == 0:
		return errs.New(errs.Malformed, "ACME account %s has no key", a.ID)
	case a.Status != StatusValid && a.Status != StatusDeactivated && a.Status != StatusRevoked:
		return errs.New(errs.Malformed, "ACME account %s has status %q", a.ID, a.Status)
	}
	return nil
}
