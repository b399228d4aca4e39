package sqlstore

import (
	"context"

	"signet/internal/store"
	"signet/internal/store/columns"
)

// RecordEndpointCheck implements store.Store.
func (s *Store) RecordEndpointCheck(ctx context.Context, c store.EndpointCheck) error {
	if err := store.CheckEndpointCheck(c); err != nil {
		return err
	}
	return s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		_, err := t.exec(`INSERT INTO endpoint_checks (endpoint, starttls, name, serial, not_after, checked_at, verdict)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (endpoint, starttls, name) DO UPDATE SET serial = excluded.serial,
				not_after = excluded.not_after, checked_at = excluded.checked_at, verdict = excluded.verdict`,
			c.Endpoint, c.StartTLS, c.Name, c.Serial, columns.NullTime(c.NotAfter), c.CheckedAt.UnixNano(), c.Verdict)
		return s.d.Error(err, "record the check of %s", c.Endpoint)
	})
}

// EndpointChecks implements store.Store.
func (s *Store) EndpointChecks(ctx context.Context, serial string) ([]store.EndpointCheck, error) {
	q := "SELECT endpoint, starttls, name, serial, not_after, checked_at, verdict FROM endpoint_checks"
	var args []any
	if serial != "" {
		q += " WHERE serial = ?"
		args = append(args, serial)
	}
	return rows(ctx, s, scanEndpointCheck, q+" ORDER BY endpoint, starttls, name", args...)
}

func scanEndpointCheck(scan func(...any) error) (store.EndpointCheck, error) {
	var c store.EndpointCheck
	var notAfter *int64
	var checked int64
	if err := scan(&c.Endpoint, &c.StartTLS, &c.Name, &c.Serial, &notAfter, &checked, &c.Verdict); err != nil {
		return c, err
	}
	if notAfter != nil {
		c.NotAfter = columns.Time(*notAfter)
	}
	c.CheckedAt = columns.Time(checked)
	return c, nil
}
