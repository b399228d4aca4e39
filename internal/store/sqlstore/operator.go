package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

const operatorColumns = "name, role, token_hash, created_at, removed_at"

func scanOperator(scan func(...any) error) (store.Operator, error) {
	var op store.Operator
	var created int64
	var removed sql.NullInt64
	if err := scan(&op.Name, &op.Role, &op.TokenHash, &created, &removed); err != nil {
		return op, err
	}
	op.CreatedAt = time.Unix(0, created).UTC()
	if removed.Valid {
		t := time.Unix(0, removed.Int64).UTC()
		op.RemovedAt = &t
	}
	return op, nil
}

// AddOperator implements store.Store.
func (s *Store) AddOperator(ctx context.Context, op store.Operator, ev audit.Event) error {
	if err := store.CheckOperator(op); err != nil {
		return err
	}
	ev, err := store.PrepareEvent(ev, "operator.add", op.Name, "")
	if err != nil {
		return err
	}
	if op.CreatedAt.IsZero() {
		op.CreatedAt = s.now()
	}
	check := func(t *tx) error {
		exists, _, err := t.exists(`SELECT EXISTS (SELECT 1 FROM operators WHERE name = ? AND removed_at IS NULL), false`, op.Name)
		if err != nil {
			return s.d.Error(err, "look up operator")
		}
		if exists {
			return errs.New(errs.Conflict, "operator %q exists; remove it first (signet operator remove %s)", op.Name, op.Name)
		}
		return nil
	}
	return s.w.do(ctx, check, func(t *tx) error {
		// A removed operator of the same name is added again, with a new
		// token and role: its row (named by earlier events) stays one row.
		_, err := t.exec(`INSERT INTO operators (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET role = excluded.role, token_hash = excluded.token_hash,
			created_at = excluded.created_at, removed_at = NULL`,
			op.Name, op.Role, op.TokenHash, op.CreatedAt.UnixNano())
		if err != nil {
			return s.d.Error(err, "operator %q", op.Name)
		}
		rows, err := t.state(&stateOperators, "name = ?", op.Name)
		if err != nil {
			return err
		}
		return t.appendEvent(&ev, rows...)
	})
}

// RemoveOperator implements store.Store.
func (s *Store) RemoveOperator(ctx context.Context, name string, ev audit.Event) error {
	ev, err := store.PrepareEvent(ev, "operator.remove", name, "")
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		exists, _, err := t.exists(`SELECT EXISTS (SELECT 1 FROM operators WHERE name = ? AND removed_at IS NULL), false`, name)
		if err != nil {
			return s.d.Error(err, "look up operator")
		}
		if !exists {
			return errs.New(errs.NotFound, "operator %q not found; see signet operator list", name)
		}
		return nil
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if _, err := t.exec("UPDATE operators SET removed_at = ? WHERE name = ?", s.now().UnixNano(), name); err != nil {
			return s.d.Error(err, "remove operator %q", name)
		}
		rows, err := t.state(&stateOperators, "name = ?", name)
		if err != nil {
			return err
		}
		return t.appendEvent(&ev, rows...)
	})
}

// Operators implements store.Store.
func (s *Store) Operators(ctx context.Context) ([]store.Operator, error) {
	return rows(ctx, s, scanOperator, "SELECT "+operatorColumns+" FROM operators ORDER BY name")
}

// OperatorByToken implements store.Store.
func (s *Store) OperatorByToken(ctx context.Context, sum [sha256.Size]byte) (store.Operator, error) {
	return row(ctx, s, func() error { return errs.New(errs.NotFound, "no operator has this token") },
		scanOperator, "SELECT "+operatorColumns+" FROM operators WHERE token_hash = ? AND removed_at IS NULL", sum[:])
}

// Operator implements store.Store.
func (s *Store) Operator(ctx context.Context, name string) (store.Operator, error) {
	return row(ctx, s, func() error { return errs.New(errs.NotFound, "operator %q not found", name) },
		scanOperator, "SELECT "+operatorColumns+" FROM operators WHERE name = ? AND removed_at IS NULL", name)
}
