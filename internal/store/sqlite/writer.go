package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store/columns"
)

// writer is the one goroutine that writes. It takes every queued request
// into one transaction (group commit: one fsync for the batch), makes sure a
// failing request fails only its caller (see commit), and answers nobody
// before COMMIT has returned. It also owns the order of the audit chain:
// each batch reads the head inside its transaction, so another process
// writing the same file cannot fork the chain, and extends it in memory.
type writer struct {
	conn     *sql.Conn
	maxBatch int
	reqs     chan *request
	exited   chan struct{}

	mu     sync.RWMutex // held for reading while sending, for writing to close reqs
	closed bool

	stmt map[string]*sql.Stmt
	now  func() time.Time

	// The batch's staged rows (see stage.go) and, while only staging
	// requests run, the SSH CA key states and authorities they have read.
	staged      [stageTableCount]staged
	raw         [stageTableCount][maxStagedRowsLog + 1]driver.StmtExecContext // see multiInsert
	nv          []driver.NamedValue                                           // see execRaw
	sshKeys     map[[2]string]string
	authorities map[string]bool

	batches, committed, reruns atomic.Int64 // for tests and benchmarks
}

// request is one write. check only reads: it refuses a write that would
// fail (duplicate, missing parent, wrong state) before anything is written.
// apply writes, and is expected to succeed once check has passed. A
// staging request (doStaged) only inserts, and its check reads nothing a
// staged row could change: its rows may wait until just before COMMIT, and
// a duplicate among them is found there (see stage.go).
type request struct {
	ctx   context.Context
	stage bool
	check func(t *tx) error
	apply func(t *tx) error
	done  chan error
}

// tx is the batch transaction as a request sees it.
type tx struct {
	ctx  context.Context
	w    *writer
	seq  int64
	hash []byte

	stage bool // the running request's inserts are staged
}

var writeStatements = map[string]string{
	"begin":      "BEGIN IMMEDIATE",
	"commit":     "COMMIT",
	"rollback":   "ROLLBACK",
	"savepoint":  "SAVEPOINT req",
	"release":    "RELEASE req",
	"rollbackTo": "ROLLBACK TO req",
	"head":       "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
	"certCheck": `SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = ?),
		EXISTS (SELECT 1 FROM authorities WHERE name = ?)`,
	"authCheck": `SELECT EXISTS (SELECT 1 FROM authorities WHERE name = ?),
		EXISTS (SELECT 1 FROM authorities WHERE name = ?)`,
	"authority": `INSERT INTO authorities (name, purpose, parent, key_uri, cert_der, policy,
		default_validity, max_validity, created_at, event_seq, base_url, shards, acme, require_eab)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	"state":  "SELECT status, authority FROM certificates WHERE serial = ?",
	"revoke": "UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ?, revoke_seq = ? WHERE serial = ?",
	"crlNumber": `INSERT INTO crl_numbers (authority, shard, number) VALUES (?, ?, 1)
		ON CONFLICT (authority, shard) DO UPDATE SET number = number + 1 RETURNING number`,
	"changeAuthority": `UPDATE authorities SET acme = COALESCE(?, acme), require_eab = COALESCE(?, require_eab) WHERE name = ?`,
}

func newWriter(ctx context.Context, conn *sql.Conn, maxBatch int, now func() time.Time) (*writer, error) {
	w := &writer{conn: conn, maxBatch: maxBatch, now: now, reqs: make(chan *request, maxBatch),
		exited: make(chan struct{}), stmt: map[string]*sql.Stmt{},
		sshKeys: map[[2]string]string{}, authorities: map[string]bool{}}
	for name, q := range writeStatements {
		st, err := conn.PrepareContext(ctx, q)
		if err != nil {
			w.closeStatements()
			return nil, errs.Wrap(errs.Internal, err, "prepare %s statement", name)
		}
		w.stmt[name] = st
	}
	go w.run()
	return w, nil
}

// do queues apply and waits for the outcome of its batch. If ctx ends while
// waiting the caller is told the outcome is unknown: the write may still
// commit. A request whose ctx has ended before its turn is skipped.
func (w *writer) do(ctx context.Context, check, apply func(t *tx) error) error {
	return w.send(&request{ctx: ctx, check: check, apply: apply, done: make(chan error, 1)})
}

// doStaged is do for a request whose inserts may be staged.
func (w *writer) doStaged(ctx context.Context, check, apply func(t *tx) error) error {
	return w.send(&request{ctx: ctx, stage: true, check: check, apply: apply, done: make(chan error, 1)})
}

func (w *writer) send(r *request) error {
	ctx := r.ctx
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errs.New(errs.Unavailable, "store is closed")
	}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		w.mu.RUnlock()
		return errs.Wrap(errs.Unavailable, ctx.Err(), "write not queued")
	}
	w.mu.RUnlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return errs.Wrap(errs.Unavailable, ctx.Err(), "gave up waiting for the write; it may still be committed")
	}
}

// close stops new requests, lets the writer finish every queued one and
// waits for it.
func (w *writer) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.reqs)
	}
	w.mu.Unlock()
	<-w.exited
	w.closeRaw()
	w.closeStatements()
}

func (w *writer) closeStatements() {
	for _, st := range w.stmt {
		st.Close()
	}
}

func (w *writer) run() {
	defer close(w.exited)
	batch := make([]*request, 0, w.maxBatch)
	for r := range w.reqs {
		batch = append(batch[:0], r)
		if len(w.reqs) < w.maxBatch/2 {
			// Woken by the first request of a batch while others are still
			// being prepared (signed, say) on every core: let the runnable
			// goroutines run once first, so that those about to queue a
			// write join this batch instead of waiting a whole commit for
			// the next. When nothing else is runnable this returns at once;
			// with half a batch queued already there is no need. With 256
			// SSH issuances in flight on two cores, batches went from about
			// 24 writes to about 95 with a yield below 64 queued, and the
			// throughput up by a third; yielding below half a batch (256)
			// gave 5-15 % more and steadier runs (BENCHMARKS.md).
			runtime.Gosched()
		}
	collect:
		for len(batch) < w.maxBatch {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break collect
				}
				batch = append(batch, r)
			default:
				break collect
			}
		}
		w.commit(batch)
	}
}

// commit runs one batch. Its statements use a context detached from the
// callers': one caller giving up must not abort everybody's transaction.
//
// The fast path runs without savepoints: check has already refused the
// writes expected to fail, before they wrote anything. If an apply fails
// anyway, its partial writes cannot be undone alone, so the transaction is
// rolled back and the batch is run again with a savepoint around each
// request, so that the failure stays its caller's own.
func (w *writer) commit(batch []*request) {
	ctx := context.Background()
	results := make([]error, len(batch))
	err := w.batch(ctx, batch, results, false)
	if errors.Is(err, errRetrySafe) {
		_, _ = w.stmt["rollback"].ExecContext(ctx)
		w.reruns.Add(1)
		clear(results)
		err = w.batch(ctx, batch, results, true)
	}
	if err != nil {
		_, _ = w.stmt["rollback"].ExecContext(ctx)
		for i := range results {
			if results[i] == nil {
				results[i] = err
			}
		}
	} else {
		w.batches.Add(1)
		for _, err := range results {
			if err == nil {
				w.committed.Add(1)
			}
		}
	}
	for i, r := range batch {
		r.done <- results[i]
	}
}

var errRetrySafe = errors.New("retry the batch with savepoints")

// batch runs the transaction; an error it returns fails every request.
func (w *writer) batch(ctx context.Context, batch []*request, results []error, safe bool) error {
	if _, err := w.stmt["begin"].ExecContext(ctx); err != nil {
		return errs.Wrap(errs.Unavailable, err, "begin write transaction")
	}
	w.unstage()
	w.forget()
	t := &tx{ctx: ctx, w: w, hash: audit.Genesis}
	err := w.stmt["head"].QueryRowContext(ctx).Scan(&t.seq, &t.hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return errs.Wrap(errs.Unavailable, err, "read audit log head")
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = errs.Wrap(errs.Unavailable, err, "write abandoned before it started")
			continue
		}
		if !safe {
			if !r.stage {
				// It may read what earlier requests wrote, or change
				// what they checked.
				if t.flush() != nil {
					return errRetrySafe
				}
				w.forget()
			}
			t.stage = r.stage
			if results[i] = r.check(t); results[i] == nil && r.apply(t) != nil {
				return errRetrySafe
			}
			continue
		}
		if _, err := w.stmt["savepoint"].ExecContext(ctx); err != nil {
			return errs.Wrap(errs.Unavailable, err, "savepoint")
		}
		seq, hash := t.seq, t.hash
		if results[i] = r.check(t); results[i] == nil {
			results[i] = r.apply(t)
		}
		if results[i] != nil {
			t.seq, t.hash = seq, hash
			if _, err := w.stmt["rollbackTo"].ExecContext(ctx); err != nil {
				return errs.Wrap(errs.Unavailable, err, "roll back a failed write")
			}
		}
		if _, err := w.stmt["release"].ExecContext(ctx); err != nil {
			return errs.Wrap(errs.Unavailable, err, "release savepoint")
		}
	}
	if !safe && t.flush() != nil {
		return errRetrySafe
	}
	if _, err := w.stmt["commit"].ExecContext(ctx); err != nil {
		return errs.Wrap(errs.Unavailable, err, "commit")
	}
	return nil
}

// appendEvent seals ev after the current head and inserts it.
func (t *tx) appendEvent(ev *audit.Event) error {
	if ev.Time.IsZero() {
		ev.Time = t.w.now().UTC().Round(0)
	}
	ev.Seq = t.seq + 1
	ev.Seal(t.hash)
	row := []any{ev.Seq, ev.Time.UnixNano(), ev.Kind, ev.Actor, ev.Authority, ev.Subject, []byte(ev.Data), ev.Prev, ev.Hash}
	if t.stage {
		t.stageRow(stageEvents, row...)
	} else if _, err := t.exec("event", row...); err != nil {
		return errs.Wrap(errs.Internal, err, "append audit event %d", ev.Seq)
	}
	t.seq, t.hash = ev.Seq, ev.Hash
	return nil
}

func (t *tx) exec(name string, args ...any) (sql.Result, error) {
	return t.w.stmt[name].ExecContext(t.ctx, args...)
}

// exists runs a statement that selects two EXISTS flags.
func (t *tx) exists(name string, args ...any) (a, b bool, err error) {
	err = t.w.stmt[name].QueryRowContext(t.ctx, args...).Scan(&a, &b)
	return a, b, err
}

// insertNames writes the certificate's names, up to maxNamesPerInsert rows
// per statement.
func (t *tx) insertNames(serial string, ns []columns.Name) error {
	for len(ns) > 0 {
		n := min(len(ns), maxNamesPerInsert)
		stmt := "names" + strconv.Itoa(n)
		args := make([]any, 0, 3*n)
		for _, v := range ns[:n] {
			args = append(args, serial, v.Type, v.Value)
		}
		if _, err := t.exec(stmt, args...); err != nil {
			return err
		}
		ns = ns[n:]
	}
	return nil
}

// constraint returns the SQLite extended code of a constraint violation, or 0.
func constraint(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
		return se.Code()
	}
	return 0
}

const (
	primaryKey = sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	unique     = sqlite3.SQLITE_CONSTRAINT_UNIQUE
	foreignKey = sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
)

// forget drops what staging requests have read.
func (w *writer) forget() {
	clear(w.sshKeys)
	clear(w.authorities)
}

// authorityExists tells whether an authority exists. While only staging
// requests run, a batch reads it once.
func (t *tx) authorityExists(name string) (bool, error) {
	if ok, known := t.w.authorities[name]; known && t.stage {
		return ok, nil
	}
	ok, _, err := t.exists("authCheck", name, name)
	if err != nil {
		return false, errs.Wrap(errs.Internal, err, "look up authority %q", name)
	}
	if t.stage {
		t.w.authorities[name] = ok
	}
	return ok, nil
}
