package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"signet/internal/errs"
)

// Schema is a database's schema: its migrations, applied in order (step
// i+1 is version i+1 in schema_migrations; append only, never edit a step
// that has shipped), and the statements that hold other processes off
// while they run.
type Schema struct {
	Steps []string
	// Begin starts the migration's transaction and takes the lock that
	// makes processes starting at once apply each step exactly once.
	Begin []string
	// Table creates schema_migrations if it does not exist.
	Table string
}

// Migrate brings db's schema up to date in one transaction: a step that
// fails leaves nothing behind, and a database made by a newer signet is
// refused rather than misread.
func Migrate(ctx context.Context, d *Dialect, db *sql.DB, sc Schema, now time.Time) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return d.Error(err, "connect for schema migration")
	}
	defer conn.Close()
	for _, q := range sc.Begin {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return errs.Wrap(errs.Unavailable, unreachable{failure{err}}, "begin schema migration")
		}
	}
	if err := migrate(ctx, d, conn, sc, now); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return errs.Wrap(errs.Unavailable, unreachable{failure{err}}, "commit schema migration")
	}
	return nil
}

// MigrateInTransaction brings the schema up to date on conn, in a
// transaction the caller began (with sc.Begin) and ends.
func MigrateInTransaction(ctx context.Context, d *Dialect, conn *sql.Conn, sc Schema, now time.Time) error {
	return migrate(ctx, d, conn, sc, now)
}

func migrate(ctx context.Context, d *Dialect, conn *sql.Conn, sc Schema, now time.Time) error {
	if _, err := conn.ExecContext(ctx, sc.Table); err != nil {
		return d.Error(err, "create schema_migrations")
	}
	var have int
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&have); err != nil {
		return d.Error(err, "read schema version")
	}
	if have > len(sc.Steps) {
		return errs.New(errs.Unavailable, "database schema version %d is newer than this signet knows (%d): upgrade signet", have, len(sc.Steps))
	}
	for v := have + 1; v <= len(sc.Steps); v++ {
		// No arguments: a step of several statements runs as one script.
		if _, err := conn.ExecContext(ctx, sc.Steps[v-1]); err != nil {
			return errs.Wrap(errs.Internal, err, "schema migration %d", v)
		}
		if _, err := conn.ExecContext(ctx, d.rebind("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"), v, now.UnixNano()); err != nil {
			return d.Error(err, "record schema migration %d", v)
		}
	}
	return nil
}
