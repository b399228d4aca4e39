package sqlite

import (
	"context"
	"database/sql"
	"time"

	"signet/internal/errs"
)

// migrations are applied in order; step i+1 is version i+1 in
// schema_migrations. Append only: never edit a step that has shipped.
//
// Times are Unix nanoseconds. Zero times are NULL. SANs are kept twice: as
// JSON in certificates.sans to read a row in one lookup, and one row per
// name in certificate_names to search by name.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE events (
	seq       INTEGER PRIMARY KEY,
	time      INTEGER NOT NULL,
	kind      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	authority TEXT NOT NULL,
	subject   TEXT NOT NULL,
	data      BLOB,
	prev      BLOB NOT NULL,
	hash      BLOB NOT NULL
);
-- The log is append-only. Triggers stop a bug, not an attacker with the
-- file: audit.Verify is what catches the latter.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

CREATE TABLE authorities (
	name             TEXT PRIMARY KEY,
	purpose          TEXT NOT NULL,
	parent           TEXT REFERENCES authorities(name),
	key_uri          TEXT NOT NULL,
	cert_der         BLOB,
	policy           BLOB,
	default_validity INTEGER NOT NULL,
	max_validity     INTEGER NOT NULL,
	created_at       INTEGER NOT NULL,
	event_seq        INTEGER NOT NULL REFERENCES events(seq)
);

CREATE TABLE certificates (
	serial     TEXT PRIMARY KEY,
	authority  TEXT NOT NULL REFERENCES authorities(name),
	subject    TEXT NOT NULL,
	sans       TEXT NOT NULL,
	not_before INTEGER NOT NULL,
	not_after  INTEGER NOT NULL,
	status     TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
	revoked_at INTEGER,
	reason     INTEGER NOT NULL DEFAULT 0,
	requester  TEXT NOT NULL,
	der        BLOB NOT NULL,
	issue_seq  INTEGER NOT NULL UNIQUE REFERENCES events(seq)
);
CREATE INDEX certificates_authority_not_after ON certificates(authority, not_after, serial);
CREATE INDEX certificates_not_after ON certificates(not_after, serial);
-- Few certificates are revoked: a partial index costs valid ones nothing.
CREATE INDEX certificates_revoked ON certificates(not_after, serial) WHERE status = 'revoked';

CREATE TABLE certificate_names (
	serial TEXT NOT NULL REFERENCES certificates(serial),
	type   TEXT NOT NULL CHECK (type IN ('dns', 'ip', 'email')),
	value  TEXT NOT NULL,
	PRIMARY KEY (serial, type, value)
) WITHOUT ROWID;
CREATE INDEX certificate_names_value ON certificate_names(value, serial);
`,
	// 2: the ACME server's state. An order's authorizations and challenges
	// live in its body (JSON): they are read and written together.
	`
CREATE TABLE acme_accounts (
	id         TEXT PRIMARY KEY,
	authority  TEXT NOT NULL REFERENCES authorities(name),
	key_id     TEXT NOT NULL,
	jwk        BLOB NOT NULL,
	contacts   TEXT NOT NULL,
	status     TEXT NOT NULL,
	eab_kid    TEXT,
	created_at INTEGER NOT NULL,
	UNIQUE (authority, key_id)
);
CREATE TABLE acme_orders (
	id          TEXT PRIMARY KEY,
	authority   TEXT NOT NULL REFERENCES authorities(name),
	account_id  TEXT NOT NULL REFERENCES acme_accounts(id),
	status      TEXT NOT NULL,
	expires     INTEGER NOT NULL,
	cert_serial TEXT,
	replaces    TEXT,
	body        BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	version     INTEGER NOT NULL
);
CREATE INDEX acme_orders_account ON acme_orders(account_id, id);
CREATE INDEX acme_orders_cert ON acme_orders(cert_serial) WHERE cert_serial IS NOT NULL;
CREATE INDEX acme_orders_replaces ON acme_orders(replaces) WHERE replaces IS NOT NULL;
CREATE INDEX acme_orders_expires ON acme_orders(expires);
CREATE TABLE acme_eab_keys (
	kid        TEXT PRIMARY KEY,
	authority  TEXT NOT NULL REFERENCES authorities(name),
	sealed     BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	account_id TEXT REFERENCES acme_accounts(id)
);
CREATE TABLE secrets (
	name       TEXT PRIMARY KEY,
	value      BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
`,
}

// migrate brings the schema up to date in one immediate transaction, so two
// processes opening the same file at once apply each step exactly once.
func migrate(ctx context.Context, conn *sql.Conn, steps []string, now time.Time) error {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return errs.Wrap(errs.Unavailable, err, "begin schema migration")
	}
	err := func() error {
		if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at INTEGER NOT NULL)`); err != nil {
			return err
		}
		var have int
		if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&have); err != nil {
			return err
		}
		if have > len(steps) {
			return errs.New(errs.Unavailable, "database schema version %d is newer than this signet knows (%d): upgrade signet", have, len(steps))
		}
		for v := have + 1; v <= len(steps); v++ {
			if _, err := conn.ExecContext(ctx, steps[v-1]); err != nil {
				return errs.Wrap(errs.Internal, err, "schema migration %d", v)
			}
			if _, err := conn.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", v, now.UnixNano()); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		if _, ok := err.(*errs.Error); ok {
			return err
		}
		return errs.Wrap(errs.Internal, err, "schema migration")
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return errs.Wrap(errs.Unavailable, err, "commit schema migration")
	}
	return nil
}
