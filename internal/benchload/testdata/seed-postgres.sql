-- Bulk rows for a large-inventory benchmark on PostgreSQL (psql -v count=N
-- -f seed-postgres.sql, on a database a `signet init --store postgres://`
-- made). Not real certificates: the DER is 667 zero bytes (a real one's
-- size) and the audit events' prev/hash are random, so `signet audit
-- verify` fails on it. What is real: the columns, every index and
-- constraint of the schema at full size, one certificate_names row and one
-- certificate.issue event (its real JSON shape) per certificate, and one
-- certificate.revoke event per revoked one. Serials are 16 random octets
-- (first octet 0x40-0x4f, positive as ca.Serial's); validities 1 to 90
-- days from now; every tenth revoked; issue and revoke seqs unique and
-- above the home's own events, then one event past them moves the head.
\set ON_ERROR_STOP on
SET maintenance_work_mem = '1GB';
SET session_replication_role = replica; -- no FK triggers: consistent by construction
BEGIN;
CREATE TEMP TABLE seed_idx AS
  SELECT indexname, indexdef FROM pg_indexes
  WHERE schemaname = 'public' AND tablename IN ('certificates', 'certificate_names', 'events')
    AND indexname NOT IN (SELECT conname FROM pg_constraint);
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT indexname FROM seed_idx LOOP EXECUTE 'DROP INDEX ' || quote_ident(r.indexname); END LOOP;
END $$;
CREATE TEMP TABLE seed AS
  SELECT i, '4' || substr(md5(random()::text || i), 2) AS serial,
    (extract(epoch FROM now())::bigint + 86400 * (1 + i % 90)) * 1000000000 AS not_after
  FROM generate_series(0, :count - 1) AS i;
INSERT INTO events (seq, time, kind, actor, authority, subject, data, prev, hash)
  SELECT 1000000000 + i, extract(epoch FROM now())::bigint * 1000000000, 'certificate.issue', 'seed', 'default', serial,
    convert_to('{"dns":["host-' || i || '.bench.example"],"email":null,"ip":[],"not_after":"' ||
      to_char(to_timestamp(not_after / 1000000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') ||
      '","sha256":"' || md5(serial) || md5(serial || 'x') || '","subject":"CN=host-' || i || '.bench.example"}', 'UTF8'),
    decode(md5(serial || 'p') || md5(serial || 'q'), 'hex'), decode(md5(serial || 'h') || md5(serial || 'k'), 'hex')
  FROM seed;
INSERT INTO events (seq, time, kind, actor, authority, subject, data, prev, hash)
  SELECT 2000000000 + i, extract(epoch FROM now())::bigint * 1000000000, 'certificate.revoke', 'seed', 'default', serial,
    convert_to('{"reason":"keyCompromise"}', 'UTF8'),
    decode(md5(serial || 'r') || md5(serial || 's'), 'hex'), decode(md5(serial || 't') || md5(serial || 'u'), 'hex')
  FROM seed WHERE i % 10 = 0;
INSERT INTO certificates (serial, authority, subject, sans, not_before, not_after, status, revoked_at, reason, requester, der, issue_seq, shard, revoke_seq)
  SELECT serial, 'default', 'CN=host-' || i || '.bench.example', '{"dns":["host-' || i || '.bench.example"]}',
    (extract(epoch FROM now())::bigint - 3600) * 1000000000, not_after,
    CASE WHEN i % 10 = 0 THEN 'revoked' ELSE 'valid' END,
    CASE WHEN i % 10 = 0 THEN (extract(epoch FROM now())::bigint - 60) * 1000000000 END,
    CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END, 'seed', decode(repeat('00', 667), 'hex'), 1000000000 + i, i % 16,
    CASE WHEN i % 10 = 0 THEN 2000000000 + i END
  FROM seed;
INSERT INTO certificate_names (serial, type, value)
  SELECT serial, 'dns', 'host-' || i || '.bench.example' FROM seed;
INSERT INTO events (seq, time, kind, actor, authority, subject, prev, hash)
  VALUES (3000000000, extract(epoch FROM now())::bigint * 1000000000, 'bench.seed', 'seed', 'default', '', '\x00', '\x00');
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT indexdef FROM seed_idx LOOP EXECUTE r.indexdef; END LOOP;
END $$;
COMMIT;
ANALYZE;
