package postgres

import (
	"context"

	"signet/internal/audit"
	"signet/internal/store"
)

// SetKeyURI implements store.Store.
func (s *Store) SetKeyURI(ctx context.Context, from, to string, ev audit.Event) (int, error) {
	ev, err := store.PrepareSetKeyURI(from, to, ev)
	if err != nil {
		return 0, err
	}
	var rows int
	check := func(t *tx) error {
		err := t.tx.QueryRow(t.ctx, `SELECT (SELECT COUNT(*) FROM authorities WHERE key_uri = $1)
			+ (SELECT COUNT(*) FROM ssh_authority_keys WHERE key_uri = $1)`, from).Scan(&rows)
		if err != nil {
			return dbError(err, "look up key URI")
		}
		return store.CheckSetKeyURI(rows)
	}
	err = s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		for _, table := range []string{"authorities", "ssh_authority_keys"} {
			if _, err := t.exec("UPDATE "+table+" SET key_uri = $1 WHERE key_uri = $2", to, from); err != nil {
				return dbError(err, "rewrite key URI")
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return rows, nil
}
