// Package store owns the CA's persistent state behind one interface:
// authorities, issued certificates and the audit log, with each record and
// its audit event written atomically. store/sqlstore implements it once
// over database/sql, for store/sqlite and store/postgres; it must pass the
// conformance suite in store/storetest on both. Consumers declare the small
// part of it they use beside themselves.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
)

// ErrNotFound is returned, wrapped, by every lookup that matches nothing.
// Test with errors.Is(err, store.ErrNotFound) or errs.KindOf.
var ErrNotFound error = &errs.Error{Kind: errs.NotFound}

// Status is a certificate's revocation state.
type Status string

const (
	Valid   Status = "valid"
	Revoked Status = "revoked"
)

// Certificate is an issued certificate as the inventory sees it.
type Certificate struct {
	Serial           string // lowercase hex, no separators; unique
	Authority        string
	Subject          string
	DNSNames         []string
	IPAddresses      []string
	EmailAddresses   []string
	NotBefore        time.Time
	NotAfter         time.Time
	Status           Status
	RevokedAt        time.Time // zero unless revoked
	RevocationReason int       // RFC 5280 CRLReason
	Requester        string
	DER              []byte
	Shard            int // the CRL shard of its authority that lists it once revoked
	// Internal marks a certificate signet issued for itself (serve's TLS
	// certificate, OCSP responder certificates): listings leave it out
	// unless asked (Filter.WithInternal).
	Internal bool

	// Rider, when set, is written in the same transaction as the
	// certificate, or neither is (see Rider).
	Rider *Rider
}

// A Rider is a write that commits with a certificate's record or not at
// all. Whoever issues passes it through unread (ca.Request.Rider); the
// ACME order layer makes one with FinalizeOrder.
type Rider struct {
	finalizes ACMEOrder
}

// FinalizeOrder is the rider of the certificate that finalizes o: o as it
// must be afterwards (status valid). RecordCertificate writes it, with
// CertSerial set to the certificate's serial, only if the stored order
// still has o.Version; otherwise it records nothing and returns
// errs.Conflict (errs.NotFound if there is no such order). So an order
// yields one certificate however many nodes finalize it at once.
func FinalizeOrder(o ACMEOrder) *Rider { return &Rider{finalizes: o} }

// Finalizes is the order r finalizes, for the store's backends.
func (r *Rider) Finalizes() ACMEOrder { return r.finalizes }

// Authority is one CA that signet runs. Policy is opaque to the store.
type Authority struct {
	Name            string
	Purpose         string
	Parent          string // "" for a root
	KeyURI          string
	CertDER         []byte
	Policy          json.RawMessage
	DefaultValidity time.Duration
	MaxValidity     time.Duration
	CreatedAt       time.Time
	BaseURL         string // where its CRLs, OCSP responder and certificate are served; "": the node's default
	Shards          int    // CRL shards its certificates are spread over; 0 is taken as 1

	// Settings an operator may change after creation (ChangeAuthority).
	ACME       bool // served over ACME (never the admin authority: see home)
	RequireEAB bool // new ACME accounts need an external account binding
	// Disabled takes the authority out of service (column enabled): it
	// issues nothing; its certificate, CRLs and OCSP answers stay served.
	Disabled bool
}

// AuthorityChange is a change of an authority's settings: each non-nil
// field is set, the others are left as they are, so that two operators
// changing different settings at once both get their way.
type AuthorityChange struct {
	ACME       *bool
	RequireEAB *bool
	Enabled    *bool
}

// Empty reports whether ch changes nothing.
func (ch AuthorityChange) Empty() bool {
	return ch.ACME == nil && ch.RequireEAB == nil && ch.Enabled == nil
}

// Validity is how long a certificate asked for req lasts: req, or the
// authority's default for 0, refused if not positive or above the
// authority's maximum. X.509 and SSH issuance both apply it.
func (a Authority) Validity(req time.Duration) (time.Duration, error) {
	v := req
	if v == 0 {
		v = a.DefaultValidity
	}
	if v <= 0 {
		return 0, errs.New(errs.Malformed, "validity must be positive")
	}
	if a.MaxValidity > 0 && v > a.MaxValidity {
		return 0, errs.New(errs.Rejected, "validity %s exceeds authority %q's maximum of %s", v, a.Name, a.MaxValidity)
	}
	return v, nil
}

// StatusQuery selects certificates for Statuses: those whose issue or
// revoke event has a seq above AfterSeq and that expire after
// NotAfterAfter (zero: any); with RevokedOnly, revoked ones only; with
// Authority, that authority's only.
type StatusQuery struct {
	AfterSeq      int64
	NotAfterAfter time.Time
	RevokedOnly   bool
	Authority     string
}

// StatusPageQuery selects one page of an authority's certificates that
// expire after NotAfterAfter, in serial order after AfterSerial.
type StatusPageQuery struct {
	Authority     string
	AfterSerial   string
	NotAfterAfter time.Time
	Limit         int
}

// CertStatus is what the revocation services keep of a certificate.
type CertStatus struct {
	Serial    string
	Authority string
	Shard     int
	NotAfter  time.Time
	Revoked   bool
	RevokedAt time.Time
	Reason    int
}

// Filter selects certificates. Zero fields match anything, but internal
// certificates are left out unless WithInternal.
type Filter struct {
	Authority      string
	Status         Status
	Name           string    // a DNS name, IP address or email address the certificate carries
	NameContains   string    // part of one of its names or of its subject, in any case
	WithInternal   bool      // internal certificates too
	NotAfterBefore time.Time // only certificates expiring before this
	NotAfterAfter  time.Time // only certificates expiring after this (hides the expired)
	Serial         string    // only this certificate (lowercase hex)
	Limit          int       // 0: no limit
	AfterSerial    string    // keyset pagination: start after this certificate in (not_after, serial) order
}

// Narrow restricts f, at time now, to certificates in status: "valid"
// (neither revoked nor expired), "revoked", or "expired" (not revoked, past
// their end; this lifts NotAfterAfter); "" keeps any. With expiring > 0 it
// keeps only those not yet expired that expire within expiring. It returns
// false for an unknown status. signet list and GET /api/v1/certificates
// both read their status and expiring through it.
func (f *Filter) Narrow(status string, expiring time.Duration, now time.Time) bool {
	switch status {
	case "":
	case "valid":
		f.Status = Valid
		if f.NotAfterAfter.Before(now) {
			f.NotAfterAfter = now
		}
	case "revoked":
		f.Status = Revoked
	case "expired":
		f.Status, f.NotAfterAfter = Valid, time.Time{}
		if f.NotAfterBefore.IsZero() || now.Before(f.NotAfterBefore) {
			f.NotAfterBefore = now
		}
	default:
		return false
	}
	if expiring > 0 {
		if f.NotAfterAfter.Before(now) {
			f.NotAfterAfter = now
		}
		if until := now.Add(expiring); f.NotAfterBefore.IsZero() || until.Before(f.NotAfterBefore) {
			f.NotAfterBefore = until
		}
	}
	return true
}

// EventFilter selects audit events, in seq order. Zero fields match anything.
type EventFilter struct {
	Kind     string
	Actor    string
	Subject  string    // a certificate serial, key URI, authority name...
	Since    time.Time // events at or after this time
	Until    time.Time // events before this time
	AfterSeq int64     // keyset pagination: events after this seq
	Limit    int       // 0: no limit
}

// Store is signet's persistent state. Every write that changes state takes
// the audit event describing it; the store assigns its Seq, fills Time if
// zero, seals it into the chain and commits it in the same transaction as
// the row, so neither exists without the other. Writes return only once
// durable.
type Store interface {
	// CreateAuthority records a; errs.Conflict if the name exists,
	// errs.NotFound if the parent does not.
	CreateAuthority(ctx context.Context, a Authority, ev audit.Event) error
	Authority(ctx context.Context, name string) (Authority, error)
	// Authorities lists every authority ordered by name.
	Authorities(ctx context.Context) ([]Authority, error)
	// ChangeAuthority applies ch with its authority.update event;
	// errs.NotFound if the authority does not exist, errs.Malformed if ch
	// changes nothing.
	ChangeAuthority(ctx context.Context, name string, ch AuthorityChange, ev audit.Event) error

	// RecordCertificate records an issued certificate and its
	// certificate.issue event; errs.Conflict on a duplicate serial,
	// errs.NotFound if the authority does not exist.
	RecordCertificate(ctx context.Context, c Certificate, ev audit.Event) error
	Certificate(ctx context.Context, serial string) (Certificate, error)
	// Certificates lists matches ordered by NotAfter, then Serial.
	Certificates(ctx context.Context, f Filter) ([]Certificate, error)
	// Revoke marks a certificate revoked with its certificate.revoke event;
	// errs.Conflict if it already is.
	Revoke(ctx context.Context, serial string, at time.Time, reason int, ev audit.Event) error

	// Statuses calls fn, from one consistent snapshot, for every certificate
	// q selects, and returns the head seq of that snapshot: the AfterSeq of
	// the next call.
	Statuses(ctx context.Context, q StatusQuery, fn func(CertStatus) error) (head int64, err error)
	// Counted: counts by aggregate queries, for status and metrics.
	Counted
	// CertStatus is one certificate's status, by serial; errs.NotFound
	// if there is none.
	CertStatus(ctx context.Context, serial string) (CertStatus, error)
	// StatusPage returns the statuses q selects, at most q.Limit.
	StatusPage(ctx context.Context, q StatusPageQuery) ([]CertStatus, error)
	// NextCRLNumbers reserves, durably, the next CRL number of each given
	// shard of an authority: numbers only grow, across processes.
	NextCRLNumbers(ctx context.Context, authority string, shards []int) ([]int64, error)
	// CreateSSHAuthority records an SSH authority (no X.509 certificate)
	// with its first CA key, active, in one transaction with its
	// authority.create event; errs.Conflict if the name exists.
	CreateSSHAuthority(ctx context.Context, a Authority, k SSHKey, ev audit.Event) error
	// AddSSHKey adds a CA key to an SSH authority with its ssh.key.add
	// event. A key added active makes the previous active key trusted.
	// errs.Conflict if the authority has the key already, errs.NotFound if
	// the authority does not exist.
	AddSSHKey(ctx context.Context, k SSHKey, ev audit.Event) error
	// SetSSHKeyState moves a CA key to state with its ssh.key.state event.
	// Making a key active makes the previous active key trusted.
	// errs.NotFound for an unknown key, errs.Conflict if it is in that state
	// already or revoked (revocation is final).
	SetSSHKeyState(ctx context.Context, authority, fingerprint string, state SSHKeyState, ev audit.Event) error
	// SSHKeys lists an authority's CA keys, oldest first.
	SSHKeys(ctx context.Context, authority string) ([]SSHKey, error)
	// RecordSSHCertificate records an SSH certificate and its
	// ssh.certificate.issue event; errs.Conflict on a duplicate serial or
	// if its CA key is not (any longer) the authority's active key,
	// errs.NotFound if the authority or key does not exist, errs.Rejected
	// if the authority revoked its key ID (RevokeSSHKeyID).
	RecordSSHCertificate(ctx context.Context, c SSHCertificate, ev audit.Event) error
	SSHCertificate(ctx context.Context, serial uint64) (SSHCertificate, error)
	// SSHCertificates lists matches ordered by serial.
	SSHCertificates(ctx context.Context, f SSHFilter) ([]SSHCertificate, error)
	// RevokeSSHCertificate revokes one certificate by serial with its
	// ssh.certificate.revoke event; errs.Conflict if it already is.
	RevokeSSHCertificate(ctx context.Context, serial uint64, at time.Time, ev audit.Event) error
	// RevokeSSHKeyID revokes every certificate of the authority with that
	// key ID, marking them revoked by key ID, with one ssh.certificate.revoke
	// event; it returns how many it revoked, errs.NotFound if none has it.
	// The key ID stays revoked: RecordSSHCertificate refuses it after.
	RevokeSSHKeyID(ctx context.Context, authority, keyID string, at time.Time, ev audit.Event) (int, error)

	// SetKeyURI rewrites every stored key URI equal to from, of authorities
	// and SSH CA keys, to to, with its key.uri.rewrite event, in one
	// transaction; it returns how many rows it changed, errs.NotFound if
	// no row has that URI.
	SetKeyURI(ctx context.Context, from, to string, ev audit.Event) (int, error)

	// AppendEvent appends an event not tied to a row (key.generate, ...).
	AppendEvent(ctx context.Context, ev audit.Event) error

	// Events, IssuedCertificates and States make a Store an audit.Reader.
	Events(ctx context.Context, fn func(audit.Event) error) error
	IssuedCertificates(ctx context.Context, fn func(serial string, issueSeq int64) error) error
	States(ctx context.Context, keep func(table, key string) bool, fn func(audit.Row) error) error
	// AuditEvents lists the events f selects, in seq order.
	AuditEvents(ctx context.Context, f EventFilter) ([]audit.Event, error)
	// AuditHead returns the newest event's seq and hash, and whether a
	// certificate was revoked after event after (for signing checkpoints).
	AuditHead(ctx context.Context, after int64) (seq int64, hash []byte, revoked bool, err error)

	// ACME is the ACME server's state (acme.go).
	ACME
	// Operators are the named operators (operator.go).
	Operators
	// ConsoleSessions are the web console's sessions (console.go).
	ConsoleSessions
	// Endpoints are the recorded endpoint checks (endpoints.go).
	Endpoints

	// Close waits for pending writes and releases the store.
	Close() error
}

var _ audit.Reader = Store(nil)

// PrepareEvent checks ev and fills what the store knows, before a backend
// seals it: Kind, Subject and Authority default to the given values, a zero
// Time stays zero for the backend to stamp in chain order, and Data is
// compacted. A Kind, Subject or Authority different from a non-empty default
// is refused, so that an issue event always names its certificate.
func PrepareEvent(ev audit.Event, kind, subject, authority string) (audit.Event, error) {
	if ev.Kind == "" {
		ev.Kind = kind
	}
	if ev.Subject == "" {
		ev.Subject = subject
	}
	if ev.Authority == "" {
		ev.Authority = authority
	}
	switch {
	case ev.Kind == "":
		return ev, errs.New(errs.Malformed, "audit event has no kind")
	case kind != "" && ev.Kind != kind:
		return ev, errs.New(errs.Malformed, "audit event kind %q, want %q", ev.Kind, kind)
	case subject != "" && ev.Subject != subject:
		return ev, errs.New(errs.Malformed, "audit event subject %q, want %q", ev.Subject, subject)
	case authority != "" && ev.Authority != authority:
		return ev, errs.New(errs.Malformed, "audit event authority %q, want %q", ev.Authority, authority)
	}
	if !ev.Time.IsZero() {
		ev.Time = ev.Time.UTC().Round(0)
	}
	if len(ev.Data) > 0 {
		// Data is nearly always compact JSON already (json.Marshal's): keep
		// it then. Whitespace, even inside strings, costs a compaction.
		if !json.Valid(ev.Data) || bytes.ContainsAny(ev.Data, " \t\r\n") {
			var b bytes.Buffer
			if err := json.Compact(&b, ev.Data); err != nil {
				return ev, errs.Wrap(errs.Malformed, err, "audit event data is not JSON")
			}
			ev.Data = b.Bytes()
		}
	} else {
		ev.Data = nil
	}
	ev.Seq, ev.Prev, ev.Hash = 0, nil, nil
	return ev, nil
}

// MaxShards bounds an authority's CRL shards.
const MaxShards = 1024

// CheckSerial refuses a serial that is not lowercase hex without separators.
func CheckSerial(serial string) error {
	if serial == "" || len(serial) > 64 {
		return errs.New(errs.Malformed, "certificate serial %q must be 1 to 64 lowercase hex digits", serial)
	}
	for _, c := range serial {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errs.New(errs.Malformed, "certificate serial %q must be lowercase hex without separators", serial)
		}
	}
	return nil
}

// CheckCertificate refuses a certificate row that cannot be recorded.
func CheckCertificate(c Certificate) error {
	if err := CheckSerial(c.Serial); err != nil {
		return err
	}
	switch {
	case c.Authority == "":
		return errs.New(errs.Malformed, "certificate %s has no authority", c.Serial)
	case len(c.DER) == 0:
		return errs.New(errs.Malformed, "certificate %s has no DER", c.Serial)
	case c.NotBefore.IsZero() || c.NotAfter.IsZero():
		return errs.New(errs.Malformed, "certificate %s has no validity period", c.Serial)
	case c.Status != "" && c.Status != Valid && c.Status != Revoked:
		return errs.New(errs.Malformed, "certificate %s has unknown status %q", c.Serial, c.Status)
	case c.Status == Revoked && c.RevokedAt.IsZero():
		return errs.New(errs.Malformed, "certificate %s is revoked with no revocation time", c.Serial)
	case c.Shard < 0 || c.Shard >= MaxShards:
		return errs.New(errs.Malformed, "certificate %s: shard %d out of range", c.Serial, c.Shard)
	}
	return CheckReason(c.RevocationReason)
}

// CheckReason refuses a value that is not an RFC 5280 CRLReason (7 is unused).
func CheckReason(reason int) error {
	if reason < 0 || reason > 10 || reason == 7 {
		return errs.New(errs.Malformed, "revocation reason %d is not an RFC 5280 CRLReason", reason)
	}
	return nil
}

// CheckAuthority refuses an authority that cannot be recorded.
func CheckAuthority(a Authority) error {
	switch {
	case a.Name == "":
		return errs.New(errs.Malformed, "authority has no name")
	case a.Parent == a.Name:
		return errs.New(errs.Malformed, "authority %q cannot be its own parent", a.Name)
	case len(a.Policy) > 0 && !json.Valid(a.Policy):
		return errs.New(errs.Malformed, "policy of authority %q is not JSON", a.Name)
	case a.DefaultValidity < 0 || a.MaxValidity < 0:
		return errs.New(errs.Malformed, "authority %q has a negative validity", a.Name)
	case a.Shards < 0 || a.Shards > MaxShards:
		return errs.New(errs.Malformed, "authority %q: %d CRL shards, want 1 to %d", a.Name, a.Shards, MaxShards)
	}
	return nil
}
