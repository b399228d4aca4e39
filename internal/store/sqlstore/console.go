package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"signet/internal/errs"
	"signet/internal/store"
)

// CreateConsoleSession implements store.Store.
func (s *Store) CreateConsoleSession(ctx context.Context, cs store.ConsoleSession) error {
	if err := store.CheckConsoleSession(cs); err != nil {
		return err
	}
	return s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		_, err := t.exec("INSERT INTO console_sessions (id_hash, operator, role, certificate, created_at, seen_at) VALUES (?, ?, ?, ?, ?, ?)",
			cs.IDHash, cs.Operator, cs.Role, cs.Certificate, cs.CreatedAt.UnixNano(), cs.SeenAt.UnixNano())
		return s.d.Error(err, "console session")
	})
}

// ConsoleSession implements store.Store.
func (s *Store) ConsoleSession(ctx context.Context, idHash []byte) (store.ConsoleSession, error) {
	cs := store.ConsoleSession{IDHash: idHash}
	var created, seen int64
	found := false
	err := s.each(ctx, false, "SELECT operator, role, certificate, created_at, seen_at FROM console_sessions WHERE id_hash = ?",
		[]any{idHash}, func(rows *sql.Rows) error {
			found = true
			return rows.Scan(&cs.Operator, &cs.Role, &cs.Certificate, &created, &seen)
		})
	if err != nil {
		return cs, s.d.Error(err, "read console session")
	}
	if !found {
		return cs, errs.New(errs.NotFound, "no such console session")
	}
	cs.CreatedAt, cs.SeenAt = time.Unix(0, created), time.Unix(0, seen)
	return cs, nil
}

// TouchConsoleSession implements store.Store.
func (s *Store) TouchConsoleSession(ctx context.Context, idHash []byte, seen time.Time) error {
	return s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		_, err := t.exec("UPDATE console_sessions SET seen_at = ? WHERE id_hash = ?", seen.UnixNano(), idHash)
		return s.d.Error(err, "console session")
	})
}

// DeleteConsoleSession implements store.Store.
func (s *Store) DeleteConsoleSession(ctx context.Context, idHash []byte) error {
	return s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		_, err := t.exec("DELETE FROM console_sessions WHERE id_hash = ?", idHash)
		return s.d.Error(err, "console session")
	})
}

// DeleteStaleConsoleSessions implements store.Store.
func (s *Store) DeleteStaleConsoleSessions(ctx context.Context, seenBefore, createdBefore time.Time) (int64, error) {
	var n int64
	err := s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		res, err := t.exec("DELETE FROM console_sessions WHERE seen_at < ? OR created_at < ?", seenBefore.UnixNano(), createdBefore.UnixNano())
		if err == nil {
			n, err = res.RowsAffected()
		}
		return s.d.Error(err, "delete stale console sessions")
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
