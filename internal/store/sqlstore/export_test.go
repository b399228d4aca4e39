package sqlstore

import (
	"context"

	"signet/internal/audit"
	"signet/internal/store"
	"signet/internal/store/columns"
)

// What the tests of the writer reach inside it.

// RevokedAfter is AuditHead's query for a revocation after an event.
const RevokedAfter = revokedAfter

type Tx = tx

// Do runs a write of the tests' own through the writer.
func (s *Store) Do(ctx context.Context, check, apply func(*Tx) error) error {
	return s.w.do(ctx, check, apply)
}

// Queued is how many writes wait for the writer.
func (s *Store) Queued() int { return len(s.w.reqs) }

// Closing reports whether Close has begun.
func (s *Store) Closing() bool {
	s.w.mu.RLock()
	defer s.w.mu.RUnlock()
	return s.w.closed
}

// Reruns is how many batches ran again with savepoints.
func (s *Store) Reruns() int64 { return s.w.reruns.Load() }

func (t *Tx) AppendEvent(ev *audit.Event) error { return t.appendEvent(ev) }

// UpdateOrder updates o with no check before it.
func (t *Tx) UpdateOrder(o store.ACMEOrder) error {
	body, err := columns.EncodeOrder(o)
	if err != nil {
		return err
	}
	return t.updateOrder(o, body)
}
