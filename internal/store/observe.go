package store

import (
	"context"
	"time"
)

// Observed is a store whose writes can be watched (store/sqlstore, so
// both SQLite and PostgreSQL).
type Observed interface {
	// ObserveCommits sets who is told of each transaction the store's
	// writer commits or fails.
	ObserveCommits(o CommitObserver)
}

// CommitObserver is told of each write transaction (package metrics):
// how many writes it took together (group commit), how long it ran from
// BEGIN to COMMIT, and err when it failed as a whole.
type CommitObserver interface {
	Commit(writes int, d time.Duration, err error)
}

// Counted is a store that counts what it holds with aggregate queries, so
// that reading the counts costs the same with millions of certificates
// as with ten (store/sqlstore).
type Counted interface {
	// CertificateCounts counts the X.509 certificates by authority and
	// status (valid, expired ones included; revoked).
	CertificateCounts(ctx context.Context) ([]CertificateCount, error)
	// Census counts what the gauges of the node that signs CRLs show: the
	// valid certificates expiring within each of within after now, the
	// ACME orders by state, the CRLs last published and the audit head.
	Census(ctx context.Context, now time.Time, within []time.Duration) (Census, error)
	// ExpiringPerDay counts the valid certificates not expired at now
	// that expire on each of days UTC days, the first now's: what the
	// console's expiry chart draws, without reading every certificate.
	ExpiringPerDay(ctx context.Context, now time.Time, days int) ([]int64, error)
}

// CertificateCount is how many certificates of Authority have Status.
type CertificateCount struct {
	Authority, Status string
	Count             int64
}

// Census is what Counted.Census reads.
type Census struct {
	// Expiring: valid certificates with now < notAfter <= now+Within.
	Expiring []ExpiringCount
	// Orders by authority and state: the stored status, or expired for a
	// pending order past its expiry (pending includes orders whose
	// authorizations are all decided, waiting for finalize).
	Orders []OrderCount
	// CRLs are the ones last published (published_crls), shard -1 the
	// whole CRL.
	CRLs      []CRLInfo
	AuditHead int64 // the seq of the last audit event, 0 when none
}

// ExpiringCount is how many valid certificates of Authority expire within
// Within.
type ExpiringCount struct {
	Authority string
	Within    time.Duration
	Count     int64
}

// OrderCount is how many ACME orders of Authority are in State.
type OrderCount struct {
	Authority, State string
	Count            int64
}

// CRLInfo describes one published CRL.
type CRLInfo struct {
	Authority              string
	Shard                  int
	ThisUpdate, NextUpdate time.Time
	Size                   int64 // bytes of DER
}
