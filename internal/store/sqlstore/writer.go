package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

// writer is the one goroutine of this process that writes. It takes every
// queued request into one transaction (group commit: one flush to disk for
// the batch), makes sure a failing request fails only its caller (see
// commit), and answers nobody before COMMIT has returned.
//
// It also keeps the audit chain one line: the dialect's Begin locks the
// chain against every other writer of the database (SQLite's write lock,
// PostgreSQL's advisory lock), each batch then reads the head inside its
// transaction and extends it in memory. A transaction's writes are visible
// before its lock is released, so the next holder, in any process, reads
// the head this batch wrote; and seq order is commit order, so a snapshot
// that holds event N+1 holds every event before it (what lets the
// revocation feed hand out changes by seq without ever skipping one).
type writer struct {
	d        *Dialect
	db       *sql.DB
	maxBatch int
	timeout  time.Duration
	reqs     chan *request
	exited   chan struct{}

	mu     sync.RWMutex // held for reading while sending, for writing to close reqs
	closed bool

	// conn is the connection the writer holds, with its prepared
	// statements; dropped when the database is lost, taken anew by the
	// next batch.
	conn *sql.Conn
	stmt map[string]*sql.Stmt // query text -> statement on conn
	now  func() time.Time

	// The batch's staged rows (see stage.go) and, while only staging
	// requests run, the SSH CA key states and authorities they have read.
	staged      [stageTableCount]staged
	raw         [stageTableCount][maxStagedRowsLog + 1]driver.StmtExecContext // see multiInsert
	nv          []driver.NamedValue                                           // see execRaw
	sshKeys     map[[2]string]string
	authorities map[string]bool

	batches, committed, reruns atomic.Int64 // for tests and benchmarks
	obs                        atomic.Pointer[store.CommitObserver]
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

func newWriter(ctx context.Context, d *Dialect, db *sql.DB, maxBatch int, timeout time.Duration, now func() time.Time) (*writer, error) {
	w := &writer{d: d, db: db, maxBatch: maxBatch, timeout: timeout, now: now, reqs: make(chan *request, maxBatch),
		exited: make(chan struct{}), sshKeys: map[[2]string]string{}, authorities: map[string]bool{}}
	if err := w.connect(ctx); err != nil {
		return nil, err
	}
	go w.run()
	return w, nil
}

// connect takes the connection the writer works on, if it has none.
func (w *writer) connect(ctx context.Context) error {
	if w.conn != nil {
		return nil
	}
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return w.d.Error(err, "connect to the database")
	}
	w.conn, w.stmt = conn, map[string]*sql.Stmt{}
	return nil
}

// disconnect gives up the writer's connection and its statements.
func (w *writer) disconnect() {
	if w.conn == nil {
		return
	}
	w.closeRaw()
	for _, st := range w.stmt {
		st.Close()
	}
	w.conn.Close()
	w.conn, w.stmt = nil, nil
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
	w.disconnect()
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
// callers' (one caller giving up must not abort everybody's transaction),
// bounded by the timeout, so that a database that stops answering fails
// the batch instead of hanging it.
//
// The fast path runs without savepoints: check has already refused the
// writes expected to fail, before they wrote anything. If an apply fails
// anyway (another process wrote meanwhile, or a bug), its partial writes
// cannot be undone alone (and PostgreSQL has aborted the transaction), so
// the transaction is rolled back and the batch is run again with a
// savepoint around each request, so that the failure stays its caller's
// own. A lost database fails the whole batch, and the writer takes a new
// connection for the next.
func (w *writer) commit(batch []*request) {
	began := time.Now()
	ctx := context.Background()
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	results := make([]error, len(batch))
	err := w.batch(ctx, batch, results, false)
	if errors.Is(err, errRetrySafe) {
		w.reruns.Add(1)
		clear(results)
		err = w.batch(ctx, batch, results, true)
	}
	if err != nil {
		if errs.KindOf(err) == errs.Unavailable {
			w.disconnect()
		}
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
	if o := w.obs.Load(); o != nil {
		(*o).Commit(len(batch), time.Since(began), err)
	}
	for i, r := range batch {
		r.done <- results[i]
	}
}

var errRetrySafe = errors.New("retry the batch with savepoints")

// batch runs the transaction; an error it returns fails every request,
// and the transaction is rolled back.
func (w *writer) batch(ctx context.Context, batch []*request, results []error, safe bool) error {
	if err := w.connect(ctx); err != nil {
		return err
	}
	err := w.transaction(ctx, batch, results, safe)
	if err != nil {
		_, _ = w.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	}
	return err
}

func (w *writer) transaction(ctx context.Context, batch []*request, results []error, safe bool) error {
	t := &tx{ctx: ctx, w: w, hash: audit.Genesis}
	for _, q := range w.d.Begin {
		if _, err := t.exec(q); err != nil {
			return errs.Wrap(errs.Unavailable, unreachable{failure{err}}, "begin write transaction")
		}
	}
	w.unstage()
	w.forget()
	err := t.queryRow("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").Scan(&t.seq, &t.hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return w.d.Error(err, "read audit log head")
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
				if err := t.flush(); err != nil {
					return w.retry(err)
				}
				w.forget()
			}
			t.stage = r.stage
			if results[i] = r.check(t); results[i] == nil {
				if err := r.apply(t); err != nil {
					return w.retry(err)
				}
			} else if fromDatabase(results[i]) {
				// A failed query may have aborted the transaction.
				return w.retry(results[i])
			}
			continue
		}
		if _, err := t.exec("SAVEPOINT req"); err != nil {
			return w.d.Error(err, "savepoint")
		}
		seq, hash := t.seq, t.hash
		if results[i] = r.check(t); results[i] == nil {
			results[i] = r.apply(t)
		}
		if results[i] != nil {
			if lost(results[i]) {
				return results[i]
			}
			t.seq, t.hash = seq, hash
			if _, err := t.exec("ROLLBACK TO SAVEPOINT req"); err != nil {
				return w.d.Error(err, "roll back a failed write")
			}
		}
		if _, err := t.exec("RELEASE SAVEPOINT req"); err != nil {
			return w.d.Error(err, "release savepoint")
		}
	}
	if !safe {
		if err := t.flush(); err != nil {
			return w.retry(err)
		}
	}
	if _, err := t.exec("COMMIT"); err != nil {
		// The connection may have died after COMMIT reached the server.
		return errs.Wrap(errs.Unavailable, unreachable{failure{err}},
			"commit (the outcome is unknown if the connection was lost)")
	}
	return nil
}

// retry is what a failed request of the fast path does to its batch: a
// lost database fails it, anything else runs it again with savepoints.
func (w *writer) retry(err error) error {
	if lost(err) {
		return err
	}
	return errRetrySafe
}

// lost reports whether err, classified by Dialect.Error, is a failure of
// the database rather than of the request: the batch cannot go on.
func lost(err error) bool { return errs.KindOf(err) == errs.Unavailable }

// appendEvent seals ev after the current head and inserts it, with the
// rows it changed as they are after the change (see state.go): read back
// in this transaction after an update, or hashed from the arguments of the
// INSERT that follows for a row that refers to its event.
func (t *tx) appendEvent(ev *audit.Event, rows ...audit.Row) error {
	if ev.Time.IsZero() {
		ev.Time = t.w.now().UTC().Round(0)
	}
	ev.Seq = t.next()
	ev.State = rows
	ev.Seal(t.hash)
	row := []any{ev.Seq, ev.Time.UnixNano(), ev.Kind, ev.Actor, ev.Authority, ev.Subject, columns.NullBytes(ev.Data), ev.Prev, ev.Hash,
		columns.NullBytes(audit.EncodeState(ev.State))}
	if t.stage {
		t.stageRow(stageEvents, row...)
	} else if _, err := t.exec(insertEvent, row...); err != nil {
		return t.w.d.Error(err, "append audit event %d", ev.Seq)
	}
	t.seq, t.hash = ev.Seq, ev.Hash
	return nil
}

// next is the seq the next event of the transaction gets: what a write
// that updates rows before appending its event records in them.
func (t *tx) next() int64 { return t.seq + 1 }

// statement returns q prepared on the writer's connection.
func (t *tx) statement(q string) (*sql.Stmt, error) {
	if st := t.w.stmt[q]; st != nil {
		return st, nil
	}
	st, err := t.w.conn.PrepareContext(t.ctx, t.w.d.rebind(q))
	if err != nil {
		return nil, err
	}
	t.w.stmt[q] = st
	return st, nil
}

// exec runs q, written with ? placeholders, in the transaction.
func (t *tx) exec(q string, args ...any) (sql.Result, error) {
	st, err := t.statement(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

// errRow is a row that failed before its query ran.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type scanner interface{ Scan(dest ...any) error }

// queryRow runs q in the transaction and returns its first row.
func (t *tx) queryRow(q string, args ...any) scanner {
	st, err := t.statement(q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(t.ctx, args...)
}

// exists runs a query that selects two booleans.
func (t *tx) exists(q string, args ...any) (a, b bool, err error) {
	err = t.queryRow(q, args...).Scan(&a, &b)
	return a, b, err
}

// insertNames writes the certificate's names, up to maxNamesPerInsert rows
// per statement.
func (t *tx) insertNames(serial string, ns []columns.Name) error {
	for len(ns) > 0 {
		n := min(len(ns), maxNamesPerInsert)
		args := make([]any, 0, 3*n)
		for _, v := range ns[:n] {
			args = append(args, serial, v.Type, v.Value)
		}
		if _, err := t.exec(insertNames[n-1], args...); err != nil {
			return err
		}
		ns = ns[n:]
	}
	return nil
}

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
	ok, _, err := t.exists(authCheck, name, name)
	if err != nil {
		return false, t.w.d.Error(err, "look up authority %q", name)
	}
	if t.stage {
		t.w.authorities[name] = ok
	}
	return ok, nil
}
