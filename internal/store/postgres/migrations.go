package postgres

import (
	"strconv"

	"signet/internal/store/sqlstore"
)

// migrations are applied in order; step i+1 is version i+1 in
// schema_migrations. Append only: never edit a step that has shipped.
//
// The schema follows store/sqlite's: times are Unix nanoseconds in bigint
// (timestamptz keeps only microseconds, and the audit hash covers
// nanoseconds), zero times are NULL, SANs are kept as JSON text to read a row
// in one lookup and one row per name to search by name. Names and serials
// sort bytewise (COLLATE "C"), as in SQLite, whatever the database's locale.
// Event data is bytea, never jsonb: the hash covers its exact bytes.
var migrations = []string{
	// 1: everything store/sqlite had at its step 3.
	`
CREATE TABLE events (
	seq       bigint PRIMARY KEY,
	time      bigint NOT NULL,
	kind      text NOT NULL,
	actor     text NOT NULL,
	authority text NOT NULL,
	subject   text NOT NULL,
	data      bytea,
	prev      bytea NOT NULL,
	hash      bytea NOT NULL
);
-- The log is append-only. The trigger stops a bug, not an attacker with the
-- database: audit.Verify is what catches the latter.
CREATE FUNCTION signet_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit events are append-only';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
	FOR EACH ROW EXECUTE FUNCTION signet_events_append_only();

CREATE TABLE authorities (
	name             text COLLATE "C" PRIMARY KEY,
	purpose          text NOT NULL,
	parent           text COLLATE "C" REFERENCES authorities(name),
	key_uri          text NOT NULL,
	cert_der         bytea,
	policy           bytea,
	default_validity bigint NOT NULL,
	max_validity     bigint NOT NULL,
	created_at       bigint NOT NULL,
	event_seq        bigint NOT NULL REFERENCES events(seq),
	base_url         text NOT NULL DEFAULT '',
	shards           integer NOT NULL DEFAULT 1
);

CREATE TABLE certificates (
	serial     text COLLATE "C" PRIMARY KEY,
	authority  text COLLATE "C" NOT NULL REFERENCES authorities(name),
	subject    text NOT NULL,
	sans       text NOT NULL,
	not_before bigint NOT NULL,
	not_after  bigint NOT NULL,
	status     text NOT NULL CHECK (status IN ('valid', 'revoked')),
	revoked_at bigint,
	reason     integer NOT NULL DEFAULT 0,
	requester  text NOT NULL,
	der        bytea NOT NULL,
	issue_seq  bigint NOT NULL UNIQUE REFERENCES events(seq),
	shard      integer NOT NULL DEFAULT 0,
	revoke_seq bigint
);
CREATE INDEX certificates_authority_not_after ON certificates(authority, not_after, serial);
CREATE INDEX certificates_not_after ON certificates(not_after, serial);
-- Few certificates are revoked: partial indexes cost valid ones nothing.
CREATE INDEX certificates_revoked ON certificates(not_after, serial) WHERE status = 'revoked';
-- The revocation feed: revocations and issuances after an audit seq.
CREATE INDEX certificates_revocations ON certificates(revoke_seq) INCLUDE (authority, shard, serial, not_after, revoked_at, reason)
	WHERE status = 'revoked';
CREATE INDEX certificates_issued ON certificates(issue_seq) INCLUDE (authority, shard, serial, not_after, status, revoked_at, reason);

CREATE TABLE certificate_names (
	serial text COLLATE "C" NOT NULL REFERENCES certificates(serial),
	type   text NOT NULL CHECK (type IN ('dns', 'ip', 'email')),
	value  text NOT NULL,
	PRIMARY KEY (serial, type, value)
);
CREATE INDEX certificate_names_value ON certificate_names(value, serial);

-- SSH serials are 63-bit and UNIQUE, so the database itself keeps them unique.
CREATE TABLE ssh_authority_keys (
	authority   text COLLATE "C" NOT NULL REFERENCES authorities(name),
	fingerprint text NOT NULL,
	key_uri     text NOT NULL,
	public_key  text NOT NULL,
	state       text NOT NULL CHECK (state IN ('active', 'trusted', 'retired', 'revoked')),
	created_at  bigint NOT NULL,
	event_seq   bigint NOT NULL REFERENCES events(seq),
	PRIMARY KEY (authority, fingerprint)
);
-- One signer per authority, whatever a buggy caller asks.
CREATE UNIQUE INDEX ssh_authority_keys_one_active ON ssh_authority_keys(authority) WHERE state = 'active';

CREATE TABLE ssh_certificates (
	issue_seq      bigint PRIMARY KEY REFERENCES events(seq),
	serial         bigint NOT NULL UNIQUE CHECK (serial > 0),
	authority      text COLLATE "C" NOT NULL,
	ca_fingerprint text NOT NULL,
	key_id         text NOT NULL,
	type           text NOT NULL CHECK (type IN ('host', 'user')),
	principals     text NOT NULL,
	valid_after    bigint NOT NULL,
	valid_before   bigint NOT NULL,
	status         text NOT NULL CHECK (status IN ('valid', 'revoked')),
	revoked_at     bigint,
	revoked_by     text CHECK (revoked_by IN ('serial', 'key-id')),
	requester      text NOT NULL,
	cert           bytea NOT NULL,
	FOREIGN KEY (authority, ca_fingerprint) REFERENCES ssh_authority_keys(authority, fingerprint)
);
CREATE INDEX ssh_certificates_key_id ON ssh_certificates(authority, key_id);
CREATE INDEX ssh_certificates_revoked ON ssh_certificates(authority, serial) WHERE status = 'revoked';

CREATE TABLE crl_numbers (
	authority text COLLATE "C" NOT NULL REFERENCES authorities(name),
	shard     integer NOT NULL,
	number    bigint NOT NULL,
	PRIMARY KEY (authority, shard)
);
`,
	// 2: what the revocation leader signs, for every node to serve. version
	// comes from a sequence drawn under lockChain, so it grows in commit
	// order and followers can poll by it.
	`
CREATE SEQUENCE revocation_version;
CREATE TABLE published_crls (
	authority   text COLLATE "C" NOT NULL REFERENCES authorities(name),
	shard       integer NOT NULL,
	der         bytea NOT NULL,
	this_update bigint NOT NULL,
	next_update bigint NOT NULL,
	version     bigint NOT NULL,
	PRIMARY KEY (authority, shard)
);
CREATE INDEX published_crls_version ON published_crls(version);
CREATE TABLE ocsp_responses (
	authority   text COLLATE "C" NOT NULL REFERENCES authorities(name),
	hash        text NOT NULL CHECK (hash IN ('sha1', 'sha256')),
	serial      text COLLATE "C" NOT NULL,
	revoked     boolean NOT NULL,
	der         bytea NOT NULL,
	this_update bigint NOT NULL,
	next_update bigint NOT NULL,
	version     bigint NOT NULL,
	PRIMARY KEY (authority, hash, serial)
);
`,
	// 3: the ACME server's state, as store/sqlite's step 4. An order's
	// authorizations and challenges live in its body (JSON as bytea: read
	// and written whole, never queried inside).
	`
CREATE TABLE acme_accounts (
	id         text COLLATE "C" PRIMARY KEY,
	authority  text COLLATE "C" NOT NULL REFERENCES authorities(name),
	key_id     text NOT NULL,
	jwk        bytea NOT NULL,
	contacts   text NOT NULL,
	status     text NOT NULL,
	eab_kid    text,
	created_at bigint NOT NULL,
	UNIQUE (authority, key_id)
);
CREATE TABLE acme_orders (
	id          text COLLATE "C" PRIMARY KEY,
	authority   text COLLATE "C" NOT NULL REFERENCES authorities(name),
	account_id  text COLLATE "C" NOT NULL REFERENCES acme_accounts(id),
	status      text NOT NULL,
	expires     bigint NOT NULL,
	cert_serial text COLLATE "C",
	replaces    text COLLATE "C",
	body        bytea NOT NULL,
	created_at  bigint NOT NULL,
	version     bigint NOT NULL
);
CREATE INDEX acme_orders_account ON acme_orders(account_id, id);
CREATE INDEX acme_orders_cert ON acme_orders(cert_serial) WHERE cert_serial IS NOT NULL;
CREATE INDEX acme_orders_replaces ON acme_orders(replaces) WHERE replaces IS NOT NULL;
CREATE INDEX acme_orders_expires ON acme_orders(expires);
CREATE TABLE acme_eab_keys (
	kid        text COLLATE "C" PRIMARY KEY,
	authority  text COLLATE "C" NOT NULL REFERENCES authorities(name),
	sealed     bytea NOT NULL,
	created_at bigint NOT NULL,
	account_id text COLLATE "C" REFERENCES acme_accounts(id)
);
CREATE TABLE secrets (
	name       text COLLATE "C" PRIMARY KEY,
	value      bytea NOT NULL,
	created_at bigint NOT NULL
);
`,
	// 4: ACME becomes a setting of each authority, as store/sqlite's step 5:
	// off for new ones; existing issuing X.509 authorities keep serving it.
	`
ALTER TABLE authorities ADD COLUMN acme boolean NOT NULL DEFAULT false,
	ADD COLUMN require_eab boolean NOT NULL DEFAULT false;
UPDATE authorities SET acme = true WHERE parent IS NOT NULL AND purpose NOT IN ('ssh-host', 'ssh-user');
`,
	// 5: revoked key IDs, as store/sqlite's step 6.
	`
CREATE INDEX ssh_certificates_revoked_key_ids ON ssh_certificates(authority, key_id) WHERE revoked_by = 'key-id';
UPDATE ssh_certificates SET status = 'revoked', revoked_by = 'key-id',
	revoked_at = (SELECT MIN(r.revoked_at) FROM ssh_certificates r
		WHERE r.authority = ssh_certificates.authority AND r.key_id = ssh_certificates.key_id AND r.revoked_by = 'key-id')
WHERE status = 'valid' AND EXISTS (SELECT 1 FROM ssh_certificates r
	WHERE r.authority = ssh_certificates.authority AND r.key_id = ssh_certificates.key_id AND r.revoked_by = 'key-id');
`,
	// 6: internal certificates, as store/sqlite's step 7 (which also adds
	// the revocation tables this database has had since step 2).
	`
ALTER TABLE certificates ADD COLUMN internal boolean NOT NULL DEFAULT false;
UPDATE certificates SET internal = true WHERE requester = 'server' OR (requester = 'revocation' AND subject LIKE 'CN=OCSP %');
`,
	// 7: row hashes in events and the baseline request, as store/sqlite's step 8.
	`
ALTER TABLE events ADD COLUMN state bytea;
CREATE TABLE audit_baseline (pending integer NOT NULL);
INSERT INTO audit_baseline (pending) SELECT 1 WHERE EXISTS (SELECT 1 FROM events);
`,
	// 8: rate limits counted in the store, as store/sqlite's step 9.
	`
ALTER TABLE acme_orders ADD COLUMN pending_authzs integer NOT NULL DEFAULT 0;
CREATE INDEX acme_orders_account_expires ON acme_orders(account_id, expires);
`,
	// 9: authorities taken out of service, as store/sqlite's step 10.
	`
ALTER TABLE authorities ADD COLUMN enabled boolean NOT NULL DEFAULT true;
`,
	// 10: the audit events of one subject, as store/sqlite's step 11.
	`
CREATE INDEX events_subject ON events(subject, seq);
`,
	// 11: named operators, as store/sqlite's step 12.
	`
CREATE TABLE operators (
	name       text PRIMARY KEY,
	role       text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
	token_hash bytea NOT NULL UNIQUE,
	created_at bigint NOT NULL,
	removed_at bigint
);
`,
	// 12: authorization reuse, as store/sqlite's step 13.
	`
CREATE TABLE acme_reusable_authzs (
	order_id   text NOT NULL REFERENCES acme_orders(id) ON DELETE CASCADE,
	n          integer NOT NULL,
	account_id text NOT NULL,
	identifier text NOT NULL,
	expires    bigint NOT NULL,
	PRIMARY KEY (order_id, n)
);
CREATE INDEX acme_reusable_authzs_account ON acme_reusable_authzs(account_id, identifier, expires);
`,
	// 13: the web console's sessions, as store/sqlite's step 14.
	`
CREATE TABLE console_sessions (
	id_hash    bytea PRIMARY KEY,
	operator   text NOT NULL,
	role       text NOT NULL,
	created_at bigint NOT NULL,
	seen_at    bigint NOT NULL
);
`,
	// 14: certificates by authority, status and expiry, as store/sqlite's
	// step 15.
	`
CREATE INDEX certificates_authority_status ON certificates(authority, status, not_after);
`,
	// 15: where certificates are deployed, as store/sqlite's step 16.
	`
CREATE TABLE endpoint_checks (
	endpoint   text NOT NULL,
	starttls   text NOT NULL,
	name       text NOT NULL,
	serial     text NOT NULL,
	not_after  bigint,
	checked_at bigint NOT NULL,
	verdict    text NOT NULL CHECK (verdict IN ('ok', 'warn', 'fail')),
	PRIMARY KEY (endpoint, starttls, name)
);
CREATE INDEX endpoint_checks_serial ON endpoint_checks(serial);
`,
	// 16: published OCSP responses by nextUpdate, as store/sqlite's step 17.
	`
CREATE INDEX ocsp_responses_next_update ON ocsp_responses(next_update);
`,
	// 17: the console session's client certificate, as store/sqlite's step 18.
	`
DELETE FROM console_sessions;
ALTER TABLE console_sessions ADD COLUMN certificate text NOT NULL DEFAULT '';
`,
	// 18: an account's rate-limit counts from two index ranges, as
	// store/sqlite's step 19.
	`
CREATE INDEX acme_orders_account_created ON acme_orders(account_id, created_at);
CREATE INDEX acme_orders_account_pending ON acme_orders(account_id, expires) INCLUDE (pending_authzs) WHERE pending_authzs > 0;
DROP INDEX acme_orders_account_expires;
`,
	// 19: the revocation events by seq (as store/sqlite's step 20), for AuditHead's poll
	// of whether a revocation follows an event: without it that reads the
	// log from the event on, to its end when no revocation follows.
	`
CREATE INDEX events_revocations ON events(seq) WHERE kind IN ('certificate.revoke', 'ssh.certificate.revoke');
`,
	// 20: the events by time (as store/sqlite's step 21), for the audit events
	// since a time (the read API's since, the console's chart of issuances):
	// without it they read the log from its first event.
	`
CREATE INDEX events_time ON events(time);
`,
}

// schema is migrations with the statements around them: one transaction
// under a transaction-level advisory lock, so that several nodes starting
// at once apply each step exactly once (the others wait for the lock, then
// find the steps applied). DDL is transactional in PostgreSQL, so a failing
// step leaves nothing behind.
var schema = sqlstore.Schema{
	Steps: migrations,
	Begin: []string{"BEGIN", "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(lockMigrate, 10) + ")"},
	Table: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		applied_at bigint NOT NULL)`,
}
