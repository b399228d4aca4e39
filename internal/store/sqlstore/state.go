package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"strings"

	"signet/internal/audit"
	"signet/internal/errs"
)

// stateTable is one table of the CA's security-relevant state: the columns
// an event's row hash covers (see audit.Row). This list is the one place
// that says which columns matter: a new column that decides what the CA
// signs or answers (an authority's enabled flag, say) is appended to cols
// and named in added with the value its migration gives existing rows, and
// every write, the baseline and audit verify follow.
type stateTable struct {
	name string
	key  []string // primary key columns; Row.Key joins them with "/"
	cols []string
	// added are columns hashed only when they differ from the value given
	// (normalized, see audit.Normalize): rows hashed before the column was
	// added, and left so, still match their events.
	added map[string]any
}

var (
	stateCertificates = stateTable{name: "certificates", key: []string{"serial"},
		cols: []string{"der", "status", "revoked_at", "reason"}}
	stateSSHCertificates = stateTable{name: "ssh_certificates", key: []string{"serial"},
		cols: []string{"cert", "status", "revoked_at", "revoked_by"}}
	stateAuthorities = stateTable{name: "authorities", key: []string{"name"},
		cols: []string{"purpose", "parent", "key_uri", "cert_der", "policy", "default_validity", "max_validity",
			"base_url", "shards", "acme", "require_eab", "enabled"},
		added: map[string]any{"enabled": int64(1)}} // normalized true
	stateSSHKeys = stateTable{name: "ssh_authority_keys", key: []string{"authority", "fingerprint"},
		cols: []string{"key_uri", "public_key", "state"}}
	stateACMEAccounts = stateTable{name: "acme_accounts", key: []string{"id"},
		cols: []string{"authority", "key_id", "jwk", "status"}}
	stateEABKeys = stateTable{name: "acme_eab_keys", key: []string{"kid"},
		cols: []string{"authority", "sealed", "account_id"}}
	stateOperators = stateTable{name: "operators", key: []string{"name"},
		cols: []string{"role", "token_hash", "removed_at"}}

	stateTables = []*stateTable{&stateAuthorities, &stateSSHKeys, &stateCertificates, &stateSSHCertificates,
		&stateACMEAccounts, &stateEABKeys, &stateOperators}
)

// selectRows is the query of the table's key and hashed columns.
func (st *stateTable) selectRows() string {
	return "SELECT " + strings.Join(st.key, ", ") + ", " + strings.Join(st.cols, ", ") + " FROM " + st.name
}

// keyOf is Row.Key of a row given as its key values followed by its columns.
func (st *stateTable) keyOf(vals []any) (string, error) {
	keys := make([]string, len(st.key))
	for i := range st.key {
		v, err := audit.Normalize(vals[i])
		if err != nil {
			return "", errs.Wrap(errs.Internal, err, "key of a %s row", st.name)
		}
		keys[i] = audit.FormatKey(v)
	}
	return strings.Join(keys, "/"), nil
}

// row hashes one row given as its key values followed by its columns.
func (st *stateTable) row(vals []any) (audit.Row, error) {
	key, err := st.keyOf(vals)
	if err != nil {
		return audit.Row{}, err
	}
	return st.hash(key, vals)
}

// hash hashes the row of this key given as its key values followed by its
// columns.
func (st *stateTable) hash(key string, vals []any) (audit.Row, error) {
	names, values := st.cols, vals[len(st.key):]
	if len(st.added) > 0 {
		names, values = nil, nil
		for i, name := range st.cols {
			v, err := audit.Normalize(vals[len(st.key)+i])
			if err != nil {
				return audit.Row{}, errs.Wrap(errs.Internal, err, "column %s of a %s row", name, st.name)
			}
			if d, ok := st.added[name]; ok && reflect.DeepEqual(v, d) {
				continue
			}
			names, values = append(names, name), append(values, v)
		}
	}
	return audit.HashRow(st.name, key, names, values)
}

// scanner returns what reads the current row of selectRows and hashes it,
// its buffers reused from row to row.
func (st *stateTable) scanner() func(*sql.Rows) (audit.Row, error) {
	scan := st.keptScanner(nil)
	return func(rows *sql.Rows) (audit.Row, error) {
		r, _, err := scan(rows)
		return r, err
	}
}

// keptScanner is scanner for the rows keep keeps (nil: all): it tells
// whether it kept the row, and hashes only those.
func (st *stateTable) keptScanner(keep func(table, key string) bool) func(*sql.Rows) (audit.Row, bool, error) {
	vals := make([]any, len(st.key)+len(st.cols))
	raw := make([]rawValue, len(vals))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &raw[i]
	}
	return func(rows *sql.Rows) (audit.Row, bool, error) {
		if err := rows.Scan(ptrs...); err != nil {
			return audit.Row{}, false, errs.Wrap(errs.Internal, err, "read %s", st.name)
		}
		for i := range raw {
			vals[i] = raw[i].v
		}
		key, err := st.keyOf(vals)
		if err != nil || keep != nil && !keep(st.name, key) {
			return audit.Row{}, false, err
		}
		r, err := st.hash(key, vals)
		return r, err == nil, err
	}
}

// rawValue is a column as the driver gave it: bytes not copied, as
// scanning into an any does, so valid only until the next row is read (a
// row is hashed before that; Row keeps no value).
type rawValue struct{ v any }

func (r *rawValue) Scan(src any) error {
	r.v = src
	return nil
}

// insertPlan hashes a row from the arguments of its INSERT, for the tables
// whose rows refer to their event (so the event must be written first, and
// the row is what the statement is given).
type insertPlan struct {
	table *stateTable
	at    []int // argument index of each key column, then each hashed column
}

// planInsert maps the table's columns to the arguments of insert, an
// "INSERT INTO t (a, b, ...) VALUES" statement that lists every one of them.
func planInsert(table *stateTable, insert string) insertPlan {
	list := insert[strings.IndexByte(insert, '(')+1 : strings.IndexByte(insert, ')')]
	index := map[string]int{}
	for i, c := range strings.Split(list, ",") {
		index[strings.TrimSpace(c)] = i
	}
	p := insertPlan{table: table}
	for _, c := range append(append([]string{}, table.key...), table.cols...) {
		i, ok := index[c]
		if !ok {
			panic("sqlstore: " + table.name + " insert does not set hashed column " + c)
		}
		p.at = append(p.at, i)
	}
	return p
}

// row hashes the row an INSERT with these arguments writes.
func (p insertPlan) row(args []any) (audit.Row, error) {
	vals := make([]any, len(p.at))
	for i, a := range p.at {
		vals[i] = args[a]
	}
	return p.table.row(vals)
}

var (
	planCertificate    = planInsert(&stateCertificates, stageTables[stageCertificates].insert)
	planSSHCertificate = planInsert(&stateSSHCertificates, stageTables[stageSSHCertificates].insert)
	planAuthority      = planInsert(&stateAuthorities, insertAuthority)
	planSSHKey         = planInsert(&stateSSHKeys, insertSSHKey)
)

// state reads the rows of table that match where, as the transaction has
// left them.
func (t *tx) state(table *stateTable, where string, args ...any) ([]audit.Row, error) {
	st, err := t.statement(table.selectRows() + " WHERE " + where)
	if err != nil {
		return nil, t.w.d.Error(err, "prepare read of %s", table.name)
	}
	rows, err := st.QueryContext(t.ctx, args...)
	if err != nil {
		return nil, t.w.d.Error(err, "read %s", table.name)
	}
	defer rows.Close()
	var out []audit.Row
	scan := table.scanner()
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, t.w.d.Error(rows.Err(), "read %s", table.name)
}

// States implements audit.Reader: every row of every state table that keep
// keeps, hashed.
func (s *Store) States(ctx context.Context, keep func(table, key string) bool, fn func(audit.Row) error) error {
	for _, table := range stateTables {
		scan := table.keptScanner(keep)
		err := s.each(ctx, true, table.selectRows(), nil, func(rows *sql.Rows) error {
			r, kept, err := scan(rows)
			if !kept {
				return err
			}
			return fn(r)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// baseline appends the state.baseline event a home made before rows were
// hashed asks for (its migration filled audit_baseline): the hashes of
// every row as found, so that audit verify checks changes from there on.
// Processes opening the home at once append it once: the request reads
// audit_baseline inside the write transaction and empties it.
func (s *Store) baseline(ctx context.Context) error {
	var pending bool
	if err := s.read.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM audit_baseline)").Scan(&pending); err != nil {
		return s.d.Error(err, "read audit baseline request")
	}
	if !pending {
		return nil
	}
	return s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		if err := t.queryRow("SELECT EXISTS (SELECT 1 FROM audit_baseline)").Scan(&pending); err != nil {
			return t.w.d.Error(err, "read audit baseline request")
		}
		if !pending {
			return nil
		}
		var all []audit.Row
		for _, table := range stateTables {
			rows, err := t.state(table, "1 = 1")
			if err != nil {
				return err
			}
			all = append(all, rows...)
		}
		ev := audit.Event{Kind: audit.KindStateBaseline, Actor: "signet", Data: []byte(`{"reason":"rows were not hashed before this event"}`)}
		if err := t.appendEvent(&ev, all...); err != nil {
			return err
		}
		_, err := t.exec("DELETE FROM audit_baseline")
		return t.w.d.Error(err, "clear audit baseline request")
	})
}

// revokedAfter asks whether a revocation event follows an event. The
// kinds are written in the query, not bound, so that both databases use
// the partial index events_revocations (which names the same kinds): a
// range of revocations after the seq, whatever lies between. Without it,
// a log whose revocations are few or far back is scanned to its end on
// every poll of the checkpointer (on a follower, from seq 0).
const revokedAfter = "SELECT EXISTS (SELECT 1 FROM events WHERE seq > ? AND kind IN ('" +
	audit.KindCertificateRevoke + "', '" + audit.KindSSHCertificateRevoke + "'))"

// AuditHead implements store.Store: the newest event's seq and hash (0 and
// audit.Genesis for an empty log), and whether a certificate was revoked
// after event after.
func (s *Store) AuditHead(ctx context.Context, after int64) (seq int64, hash []byte, revoked bool, err error) {
	ctx, cancel := s.bound(ctx, false)
	defer cancel()
	err = s.read.QueryRowContext(ctx, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, audit.Genesis, false, nil
	}
	if err != nil {
		return 0, nil, false, s.d.Error(err, "read audit log head")
	}
	if seq > after {
		err = s.read.QueryRowContext(ctx, s.d.rebind(revokedAfter), after).Scan(&revoked)
		if err != nil {
			return 0, nil, false, s.d.Error(err, "read audit log head")
		}
	}
	return seq, hash, revoked, nil
}
