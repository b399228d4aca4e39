package sqlite

import "signet/internal/store/sqlstore"

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
	// 2: SSH authorities' CA keys and SSH certificates. Serials are 63-bit
	// (INTEGER is signed) and UNIQUE, so the database itself keeps them
	// unique. Rows are keyed by their issue event's seq, which only grows:
	// a batch appends its certificates to the last pages instead of
	// scattering them over the table by random serial.
	`
CREATE TABLE ssh_authority_keys (
	authority   TEXT NOT NULL REFERENCES authorities(name),
	fingerprint TEXT NOT NULL,
	key_uri     TEXT NOT NULL,
	public_key  TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('active', 'trusted', 'retired', 'revoked')),
	created_at  INTEGER NOT NULL,
	event_seq   INTEGER NOT NULL REFERENCES events(seq),
	PRIMARY KEY (authority, fingerprint)
) WITHOUT ROWID;
-- One signer per authority, whatever a buggy caller asks.
CREATE UNIQUE INDEX ssh_authority_keys_one_active ON ssh_authority_keys(authority) WHERE state = 'active';

CREATE TABLE ssh_certificates (
	issue_seq      INTEGER PRIMARY KEY REFERENCES events(seq),
	serial         INTEGER NOT NULL UNIQUE CHECK (serial > 0),
	authority      TEXT NOT NULL,
	ca_fingerprint TEXT NOT NULL,
	key_id         TEXT NOT NULL,
	type           TEXT NOT NULL CHECK (type IN ('host', 'user')),
	principals     TEXT NOT NULL,
	valid_after    INTEGER NOT NULL,
	valid_before   INTEGER NOT NULL,
	status         TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
	revoked_at     INTEGER,
	revoked_by     TEXT CHECK (revoked_by IN ('serial', 'key-id')),
	requester      TEXT NOT NULL,
	cert           BLOB NOT NULL,
	FOREIGN KEY (authority, ca_fingerprint) REFERENCES ssh_authority_keys(authority, fingerprint)
);
CREATE INDEX ssh_certificates_key_id ON ssh_certificates(authority, key_id);
CREATE INDEX ssh_certificates_revoked ON ssh_certificates(authority, serial) WHERE status = 'revoked';
`,
	// 3: revocation. Each certificate belongs to one CRL shard of its
	// authority; revoke_seq is the audit seq of its revocation, so that a
	// server notices revocations made by other processes by polling for seqs
	// above the last one it saw (clocks of several nodes may disagree, seqs
	// do not). The covering partial index makes that poll, and loading every
	// revocation at start, an index-only scan.
	`
ALTER TABLE certificates ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN revoke_seq INTEGER;
ALTER TABLE authorities ADD COLUMN base_url TEXT NOT NULL DEFAULT '';
ALTER TABLE authorities ADD COLUMN shards INTEGER NOT NULL DEFAULT 1;
CREATE INDEX certificates_revocations ON certificates(revoke_seq, authority, shard, serial, not_after, revoked_at, reason)
	WHERE status = 'revoked';
CREATE INDEX certificates_issued ON certificates(issue_seq, authority, shard, serial, not_after, status, revoked_at, reason);
CREATE TABLE crl_numbers (
	authority TEXT NOT NULL REFERENCES authorities(name),
	shard     INTEGER NOT NULL,
	number    INTEGER NOT NULL,
	PRIMARY KEY (authority, shard)
) WITHOUT ROWID;
`,
	// 4: the ACME server's state. An order's authorizations and challenges
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
	// 5: ACME becomes a setting of each authority, off for new ones.
	// Existing issuing X.509 authorities keep serving it, as they did; the
	// home then turns it off for its admin authority (home.Open).
	`
ALTER TABLE authorities ADD COLUMN acme INTEGER NOT NULL DEFAULT 0 CHECK (acme IN (0, 1));
ALTER TABLE authorities ADD COLUMN require_eab INTEGER NOT NULL DEFAULT 0 CHECK (require_eab IN (0, 1));
UPDATE authorities SET acme = 1 WHERE parent IS NOT NULL AND purpose NOT IN ('ssh-host', 'ssh-user');
`,
	// 6: a key ID revoked with its certificates (revoked_by 'key-id') is
	// listed in the KRL, which refuses every certificate with it: the
	// partial index lets RecordSSHCertificate refuse new ones cheaply, and
	// certificates issued with it after its revocation, which earlier
	// versions recorded as valid, are marked revoked as of that revocation.
	`
CREATE INDEX ssh_certificates_revoked_key_ids ON ssh_certificates(authority, key_id) WHERE revoked_by = 'key-id';
UPDATE ssh_certificates SET status = 'revoked', revoked_by = 'key-id',
	revoked_at = (SELECT MIN(r.revoked_at) FROM ssh_certificates r
		WHERE r.authority = ssh_certificates.authority AND r.key_id = ssh_certificates.key_id AND r.revoked_by = 'key-id')
WHERE status = 'valid' AND EXISTS (SELECT 1 FROM ssh_certificates r
	WHERE r.authority = ssh_certificates.authority AND r.key_id = ssh_certificates.key_id AND r.revoked_by = 'key-id');
`,
	// 7: internal certificates and the last signed revocation documents.
	// serve's own TLS certificates and the OCSP responder certificates are
	// marked internal, so that listings of what operators issued leave them
	// out; earlier versions recorded them with the requester "server" (its
	// own certificate) and "revocation" with subject "CN=OCSP <authority>"
	// (responders): those rows are marked. published_crls and
	// ocsp_responses keep the CRLs and OCSP responses last signed, as
	// store/postgres's step 2, so that a restarted server serves them
	// before it signs anew; revocation_version numbers publications.
	`
ALTER TABLE certificates ADD COLUMN internal INTEGER NOT NULL DEFAULT 0 CHECK (internal IN (0, 1));
UPDATE certificates SET internal = 1 WHERE requester = 'server' OR (requester = 'revocation' AND subject LIKE 'CN=OCSP %');
CREATE TABLE published_crls (
	authority   TEXT NOT NULL REFERENCES authorities(name),
	shard       INTEGER NOT NULL,
	der         BLOB NOT NULL,
	this_update INTEGER NOT NULL,
	next_update INTEGER NOT NULL,
	version     INTEGER NOT NULL,
	PRIMARY KEY (authority, shard)
) WITHOUT ROWID;
CREATE INDEX published_crls_version ON published_crls(version);
CREATE TABLE ocsp_responses (
	authority   TEXT NOT NULL REFERENCES authorities(name),
	hash        TEXT NOT NULL CHECK (hash IN ('sha1', 'sha256')),
	serial      TEXT NOT NULL,
	revoked     INTEGER NOT NULL CHECK (revoked IN (0, 1)),
	der         BLOB NOT NULL,
	this_update INTEGER NOT NULL,
	next_update INTEGER NOT NULL,
	version     INTEGER NOT NULL,
	PRIMARY KEY (authority, hash, serial)
) WITHOUT ROWID;
CREATE TABLE revocation_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
INSERT INTO revocation_version (id, version) VALUES (1, 0);
`,
	// 8: events carry the hashes of the rows they change (audit.Row). A
	// home that already has events gets one state.baseline event when it
	// is next opened (sqlstore.New), which audit_baseline asks for.
	`
ALTER TABLE events ADD COLUMN state BLOB;
CREATE TABLE audit_baseline (pending INTEGER NOT NULL);
INSERT INTO audit_baseline (pending) SELECT 1 WHERE EXISTS (SELECT 1 FROM events);
`,
	// 9: rate limits counted in the store, shared by every node: an
	// order's pending authorizations, kept by every write of the order,
	// and an index to count an account's recent and live orders (by
	// expiry: an order created since T expires after T). Orders made
	// before count none; they expire within their lifetime.
	`
ALTER TABLE acme_orders ADD COLUMN pending_authzs INTEGER NOT NULL DEFAULT 0;
CREATE INDEX acme_orders_account_expires ON acme_orders(account_id, expires);
`,
	// 10: an authority may be taken out of service (signet authority
	// disable): it then issues nothing, while its CA certificate, CRLs and
	// OCSP answers keep being served. Every existing authority stays in.
	`
ALTER TABLE authorities ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1));
`,
	// 11: the audit events of one subject (a certificate's serial), in
	// order, for GET /api/v1/certificates/{serial} without reading the
	// whole log.
	`
CREATE INDEX events_subject ON events(subject, seq);
`,
	// 12: named operators with a role, each with a personal API token
	// kept as its SHA-256 (signet operator add). No operator exists
	// before: the admin token and admin certificates keep working. A
	// removed operator keeps its row (its events name it) with removed_at.
	`
CREATE TABLE operators (
	name       TEXT PRIMARY KEY,
	role       TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
	token_hash BLOB NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	removed_at INTEGER
);
`,
	// 13: authorization reuse: the valid authorizations that later orders
	// of their account may reuse, one row each, by account and identifier
	// ("dns:NAME", "dns:*.NAME" for a wildcard, "ip:ADDR"), kept by every
	// write of their order and deleted with it. Orders made before have
	// none to offer.
	`
CREATE TABLE acme_reusable_authzs (
	order_id   TEXT NOT NULL REFERENCES acme_orders(id) ON DELETE CASCADE,
	n          INTEGER NOT NULL,
	account_id TEXT NOT NULL,
	identifier TEXT NOT NULL,
	expires    INTEGER NOT NULL,
	PRIMARY KEY (order_id, n)
);
CREATE INDEX acme_reusable_authzs_account ON acme_reusable_authzs(account_id, identifier, expires);
`,
	// 14: the web console's sessions, shared by every node. Only the
	// SHA-256 of a session's ID is kept: a copy of the database signs no
	// one in. Not audited state: sign-in and sign-out are events of their own.
	`
CREATE TABLE console_sessions (
	id_hash    BLOB PRIMARY KEY,
	operator   TEXT NOT NULL,
	role       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	seen_at    INTEGER NOT NULL
) WITHOUT ROWID;
`,
	// 15: certificates by authority, status and expiry, for the counts of
	// signet status and the metrics (store.Counted): an index-only range
	// per authority instead of reading every row.
	`
CREATE INDEX certificates_authority_status ON certificates(authority, status, not_after);
`,
	// 16: where certificates are deployed: the latest signet check
	// --record of each endpoint (HOST:PORT, STARTTLS protocol, name
	// checked), with the serial it served ('' if none) and its verdict.
	// An observation, not CA state: no audit event goes with it.
	`
CREATE TABLE endpoint_checks (
	endpoint   TEXT NOT NULL,
	starttls   TEXT NOT NULL,
	name       TEXT NOT NULL,
	serial     TEXT NOT NULL,
	not_after  INTEGER,
	checked_at INTEGER NOT NULL,
	verdict    TEXT NOT NULL CHECK (verdict IN ('ok', 'warn', 'fail')),
	PRIMARY KEY (endpoint, starttls, name)
) WITHOUT ROWID;
CREATE INDEX endpoint_checks_serial ON endpoint_checks(serial);
`,
	// 17: published OCSP responses by nextUpdate, so that those of expired
	// certificates, which no one re-signs, are pruned without a scan of
	// the table (store.Published.PruneOCSP).
	`
CREATE INDEX ocsp_responses_next_update ON ocsp_responses(next_update);
`,
	// 18: the client certificate a console session signed in with, so
	// that the session ends when that certificate is revoked or expires.
	// Sessions made before cannot say how they signed in: they end, and
	// their operators sign in again.
	`
DELETE FROM console_sessions;
ALTER TABLE console_sessions ADD COLUMN certificate TEXT NOT NULL DEFAULT '';
`,
	// 19: the rate limits' counts of an account (store.ACMEAccountLoad)
	// from two index-only ranges instead of a read of every live order's
	// row: its orders by creation, and its orders that still hold pending
	// authorizations (few: validation empties them). They replace step 9's
	// index by account and expiry.
	`
CREATE INDEX acme_orders_account_created ON acme_orders(account_id, created_at);
CREATE INDEX acme_orders_account_pending ON acme_orders(account_id, expires, pending_authzs) WHERE pending_authzs > 0;
DROP INDEX acme_orders_account_expires;
`,
	// 20: the revocation events by seq (as store/postgres's step 19), for AuditHead's poll
	// of whether a revocation follows an event: without it that reads the
	// log from the event on, to its end when no revocation follows.
	`
CREATE INDEX events_revocations ON events(seq) WHERE kind IN ('certificate.revoke', 'ssh.certificate.revoke');
`,
	// 21: the events by time (as store/postgres's step 20), for the audit events
	// since a time (the read API's since, the console's chart of issuances):
	// without it they read the log from its first event.
	`
CREATE INDEX events_time ON events(time);
`,
}

// schema is migrations with the statements around them: an immediate
// transaction, so two processes opening the same file at once apply each
// step exactly once.
var schema = sqlstore.Schema{
	Steps: migrations,
	Begin: []string{"BEGIN IMMEDIATE"},
	Table: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at INTEGER NOT NULL)`,
}
