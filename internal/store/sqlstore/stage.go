package sqlstore

import (
	"context"
	"database/sql/driver"
	"math/bits"
	"strings"

	"signet/internal/errs"
)

// Staging: on the writer's fast path, the rows of requests that only insert
// (certificate issuance with its event) are not inserted one statement at a
// time but collected per table and written with multi-row INSERTs just
// before COMMIT, table by table in the fixed order of stageTables (events
// before the rows that refer to them). A request that reads or updates
// rows first flushes what is staged, so it sees every earlier write of its
// batch. If a flush fails (a duplicate serial, say), the writer cannot
// tell whose row it was: it rolls the batch back and runs it again with a
// savepoint around each request and nothing staged, so the failure stays
// its caller's own.

// stageTable is one table rows are staged for. Flushes go in the order of
// stageTables: a row comes after the rows it refers to. Its INSERT is also
// the one a request that is not staged runs (see init), so the two cannot
// drift apart.
type stageTable struct {
	name   string
	insert string // "INSERT INTO t (cols) VALUES "
	then   string // what follows the rows
	cols   int    // counted from insert's column list
}

const (
	stageEvents = iota
	stageSSHCertificates
	stageCertificates
	stageCertificateNames
	stageTableCount
)

var stageTables = [stageTableCount]stageTable{
	stageEvents: {name: "events", insert: "INSERT INTO events (seq, time, kind, actor, authority, subject, data, prev, hash, state) VALUES "},
	stageSSHCertificates: {name: "ssh_certificates", insert: `INSERT INTO ssh_certificates (serial, authority, ca_fingerprint, key_id, type,
		principals, valid_after, valid_before, status, revoked_at, revoked_by, requester, cert, issue_seq) VALUES `},
	stageCertificates: {name: "certificates", insert: `INSERT INTO certificates (serial, authority, subject, sans, not_before, not_after,
		status, revoked_at, reason, requester, der, issue_seq, shard, internal) VALUES `},
	stageCertificateNames: {name: "certificate_names", insert: "INSERT INTO certificate_names (serial, type, value) VALUES ",
		then: " ON CONFLICT DO NOTHING"},
}

// maxNamesPerInsert bounds the multi-row name inserts of insertNames: one
// statement per certificate in the common case.
const maxNamesPerInsert = 8

// The statements of the requests that are not staged, from stageTables.
var (
	insertEvent, insertCertificate, insertSSHCertificate string
	insertNames                                          [maxNamesPerInsert]string
)

func init() {
	for i := range stageTables {
		tt := &stageTables[i]
		tt.cols = strings.Count(tt.insert[strings.IndexByte(tt.insert, '('):strings.IndexByte(tt.insert, ')')], ",") + 1
	}
	insertEvent = stageTables[stageEvents].rows(1)
	insertCertificate = stageTables[stageCertificates].rows(1)
	insertSSHCertificate = stageTables[stageSSHCertificates].rows(1)
	for n := range insertNames {
		insertNames[n] = stageTables[stageCertificateNames].rows(n + 1)
	}
}

// rows is the INSERT of n rows into the table.
func (tt stageTable) rows(n int) string {
	row := "(" + strings.Repeat("?, ", tt.cols-1) + "?)"
	return tt.insert + strings.Repeat(row+", ", n-1) + row + tt.then
}

// maxStagedRows is the most rows one INSERT takes; a flush uses statements
// of a power-of-two number of rows up to it, so each table has at most
// seven prepared statements.
const (
	maxStagedRows    = 1 << maxStagedRowsLog
	maxStagedRowsLog = 6
)

// staged holds one table's rows waiting for the flush. The writer keeps
// its buffers from batch to batch.
type staged struct {
	rows int
	args []any
}

// stageRow adds one row of a table to the batch's staged inserts.
func (t *tx) stageRow(table int, args ...any) {
	s := &t.w.staged[table]
	s.rows++
	s.args = append(s.args, args...)
}

// flush inserts every staged row. The INSERTs go to the driver itself:
// database/sql would copy a batch's thousands of arguments into a fresh
// slice for every statement, where the writer reuses one. It runs before
// every request that is not staged, so with nothing staged it does nothing.
func (t *tx) flush() error {
	if t.w.nothingStaged() {
		return nil
	}
	err := t.w.conn.Raw(func(dc any) error {
		for i := range t.w.staged {
			s := &t.w.staged[i]
			cols := stageTables[i].cols
			args := s.args
			for rows := s.rows; rows > 0; {
				n := maxStagedRows
				for n > rows {
					n /= 2
				}
				st, err := t.w.multiInsert(t.ctx, dc, i, n)
				if err != nil {
					return err
				}
				if err := t.w.execRaw(t.ctx, st, args[:n*cols]); err != nil {
					return t.w.d.Error(err, "insert of %d staged rows into %s", n, stageTables[i].name)
				}
				args, rows = args[n*cols:], rows-n
			}
		}
		t.w.unstage()
		return nil
	})
	return t.w.d.Error(err, "insert staged rows")
}

// nothingStaged tells whether no table has a staged row.
func (w *writer) nothingStaged() bool {
	for i := range w.staged {
		if w.staged[i].rows > 0 {
			return false
		}
	}
	return true
}

// execRaw runs a driver statement with args in the writer's reused buffer.
func (w *writer) execRaw(ctx context.Context, st driver.StmtExecContext, args []any) error {
	nv := w.nv[:0]
	for i, a := range args {
		if !driver.IsValue(a) {
			v, err := driver.DefaultParameterConverter.ConvertValue(a)
			if err != nil {
				return err
			}
			a = v
		}
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	_, err := st.ExecContext(ctx, nv)
	clear(nv)
	w.nv = nv[:0]
	return err
}

// unstage drops what is staged, keeping the buffers but not the rows' bytes.
func (w *writer) unstage() {
	for i := range w.staged {
		s := &w.staged[i]
		clear(s.args)
		s.args, s.rows = s.args[:0], 0
	}
}

// multiInsert returns the prepared INSERT of n rows (a power of two) into
// a staged table, as a statement of the driver connection dc.
func (w *writer) multiInsert(ctx context.Context, dc any, table, n int) (driver.StmtExecContext, error) {
	k := bits.TrailingZeros(uint(n))
	if st := w.raw[table][k]; st != nil {
		return st, nil
	}
	tt := stageTables[table]
	pc, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, errs.New(errs.Internal, "the database driver cannot prepare statements with a context")
	}
	st, err := pc.PrepareContext(ctx, w.d.rebind(tt.rows(n)))
	if err != nil {
		return nil, w.d.Error(err, "prepare insert of %d rows into %s", n, tt.name)
	}
	se, ok := st.(driver.StmtExecContext)
	if !ok {
		st.Close()
		return nil, errs.New(errs.Internal, "the database driver cannot execute statements with a context")
	}
	w.raw[table][k] = se
	return se, nil
}

// closeRaw closes the driver statements of multiInsert.
func (w *writer) closeRaw() {
	_ = w.conn.Raw(func(any) error {
		for i := range w.raw {
			for k, st := range w.raw[i] {
				if st != nil {
					st.(driver.Stmt).Close()
					w.raw[i][k] = nil
				}
			}
		}
		return nil
	})
}
