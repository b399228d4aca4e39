package sqlite

import (
	"context"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

func init() {
	writeStatements["keyURICount"] = `SELECT (SELECT COUNT(*) FROM authorities WHERE key_uri = ?)
		+ (SELECT COUNT(*) FROM ssh_authority_keys WHERE key_uri = ?)`
	writeStatements["authorityKeyURI"] = "UPDATE authorities SET key_uri = ? WHERE key_uri = ?"
	writeStatements["sshKeyURI"] = "UPDATE ssh_authority_keys SET key_uri = ? WHERE key_uri = ?"
}

// SetKeyURI implements store.Store.
func (s *Store) SetKeyURI(ctx context.Context, from, to string, ev audit.Event) (int, error) {
	ev, err := store.PrepareSetKeyURI(from, to, ev)
	if err != nil {
		return 0, err
	}
	var rows int
	check := func(t *tx) error {
		if err := t.w.stmt["keyURICount"].QueryRowContext(t.ctx, from, from).Scan(&rows); err != nil {
			return errs.Wrap(errs.Internal, err, "look up key URI")
		}
		return store.CheckSetKeyURI(rows)
	}
	err = s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		for _, stmt := range []string{"authorityKeyURI", "sshKeyURI"} {
			if _, err := t.exec(stmt, to, from); err != nil {
				return errs.Wrap(errs.Internal, err, "rewrite key URI")
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return rows, nil
}
