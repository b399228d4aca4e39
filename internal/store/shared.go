package store

import (
	"context"
	"time"
)

// Shared is a store that several signet nodes use at once (store/postgres;
// an SQLite file serves one node and does not implement it). It elects the
// one node that runs each background job and carries what that node signs
// to the others, so that every node serves the same CRLs and OCSP answers.
type Shared interface {
	// Lead reports whether this node leads job, becoming its leader if no
	// live node is. Leadership lasts until this node's connection to the
	// store ends (it dies, or loses the database): then another node's Lead
	// takes over. A leader must ask again before each round of its job.
	Lead(ctx context.Context, job string) (bool, error)
	Published
}

// Published keeps the last signed CRLs and OCSP responses (store/sqlstore,
// so both SQLite and PostgreSQL): other nodes serve what one signed, and a
// restarted server serves them before it signs anew.
type Published interface {
	// PublishRevocation stores signed CRLs and OCSP responses, replacing
	// older ones of the same shard or (authority, hash, serial).
	PublishRevocation(ctx context.Context, docs []RevocationDoc) error
	// PublishedCRLs calls fn for every CRL published after version and
	// returns the version to ask after next time.
	PublishedCRLs(ctx context.Context, afterVersion int64, fn func(RevocationDoc) error) (int64, error)
	// PublishedOCSP returns the response for one certificate and CertID
	// hash; ErrNotFound if none has been published.
	PublishedOCSP(ctx context.Context, authority, hash, serial string) (RevocationDoc, error)
	// FreshOCSP says, for each serial of authority after after and up to
	// through, what its published responses state (revoked or not) when
	// both its CertID hashes' were signed at or after since and state the
	// same; serials without two such responses are not in the map.
	FreshOCSP(ctx context.Context, authority, after, through string, since time.Time) (map[string]bool, error)
	// PruneOCSP deletes at most limit published OCSP responses whose
	// nextUpdate is before before (those of expired certificates, which
	// no one re-signs) and says how many it deleted.
	PruneOCSP(ctx context.Context, before time.Time, limit int) (int64, error)
}

// RevocationDoc is a signed CRL (Kind "crl", Shard) or OCSP response
// (Kind "ocsp", Serial, Hash, Revoked).
type RevocationDoc struct {
	Kind       string
	Authority  string
	Shard      int
	Serial     string // lowercase hex
	Hash       string // the CertID hash the response echoes: "sha1" or "sha256"
	Revoked    bool   // the status an OCSP response states
	DER        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
	Version    int64 // set by the store
}
