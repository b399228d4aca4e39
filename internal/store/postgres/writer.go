package postgres

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store/columns"
)

// writer is this node's one writing goroutine. It takes every queued
// request into one transaction (group commit: one WAL flush for the batch)
// and answers nobody before COMMIT has returned.
//
// Several nodes write the same database, and the audit chain must stay one
// line: each batch first takes the transaction-level advisory lock
// lockChain, then reads the chain head, appends, and commits. PostgreSQL
// makes a transaction's writes visible before it releases its locks, so the
// next holder (on any node) reads the head this batch wrote. The same lock
// makes seq order equal to commit order: a snapshot that sees event N+1
// sees every event before it, which is what lets the revocation feed
// (Statuses) hand out changes by audit seq without ever skipping one.
type writer struct {
	pool     *pgxpool.Pool
	maxBatch int
	timeout  time.Duration
	reqs     chan *request
	exited   chan struct{}
	now      func() time.Time

	mu     sync.RWMutex // held for reading while sending, for writing to close reqs
	closed bool

	batches, committed atomic.Int64 // for tests and benchmarks
}

// request is one write. check only reads: it refuses a write that would
// fail (duplicate, missing parent, wrong state) before anything is written.
// apply writes, and is expected to succeed once check has passed.
type request struct {
	ctx   context.Context
	check func(t *tx) error
	apply func(t *tx) error
	done  chan error
}

// tx is the batch transaction as a request sees it.
type tx struct {
	ctx  context.Context
	tx   pgx.Tx
	now  func() time.Time
	seq  int64
	hash []byte
}

func newWriter(pool *pgxpool.Pool, maxBatch int, timeout time.Duration, now func() time.Time) *writer {
	w := &writer{pool: pool, maxBatch: maxBatch, timeout: timeout, now: now,
		reqs: make(chan *request, maxBatch), exited: make(chan struct{})}
	go w.run()
	return w
}

// do queues a write and waits for the outcome of its batch. If ctx ends
// while waiting the caller is told the outcome is unknown: the write may
// still commit. A request whose ctx has ended before its turn is skipped.
func (w *writer) do(ctx context.Context, check, apply func(t *tx) error) error {
	r := &request{ctx: ctx, check: check, apply: apply, done: make(chan error, 1)}
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
}

func (w *writer) run() {
	defer close(w.exited)
	batch := make([]*request, 0, w.maxBatch)
	for r := range w.reqs {
		batch = append(batch[:0], r)
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
// callers' (one caller giving up must not abort everybody's transaction)
// but bounded, so that a database that stops answering fails the batch
// instead of hanging it.
//
// The fast path runs without savepoints: check has already refused the
// writes expected to fail. If an apply fails anyway (another node wrote
// meanwhile, or a bug), PostgreSQL has aborted the whole transaction, so it
// is rolled back and the batch run again with a savepoint around each
// request, so that the failure stays its caller's own.
func (w *writer) commit(batch []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	results := make([]error, len(batch))
	err := w.batch(ctx, batch, results, false)
	if errors.Is(err, errRetrySafe) {
		clear(results)
		err = w.batch(ctx, batch, results, true)
	}
	if err != nil {
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
	ptx, err := w.pool.Begin(ctx)
	if err != nil {
		return errs.Wrap(errs.Unavailable, unreachable{err}, "begin write transaction")
	}
	defer ptx.Rollback(context.WithoutCancel(ctx))
	if _, err := ptx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockChain); err != nil {
		return dbError(err, "lock the audit chain")
	}
	t := &tx{ctx: ctx, tx: ptx, now: w.now, hash: audit.Genesis}
	err = ptx.QueryRow(ctx, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").Scan(&t.seq, &t.hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return dbError(err, "read audit log head")
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = errs.Wrap(errs.Unavailable, err, "write abandoned before it started")
			continue
		}
		if !safe {
			if results[i] = r.check(t); results[i] == nil {
				if err := r.apply(t); err != nil {
					if connectionLost(err) {
						return err
					}
					return errRetrySafe
				}
			} else if connectionLost(results[i]) {
				return results[i]
			} else if dbFailed(results[i]) {
				return errRetrySafe // the failed query aborted the transaction
			}
			continue
		}
		if _, err := ptx.Exec(ctx, "SAVEPOINT req"); err != nil {
			return errs.Wrap(errs.Unavailable, err, "savepoint")
		}
		seq, hash := t.seq, t.hash
		if results[i] = r.check(t); results[i] == nil {
			results[i] = r.apply(t)
		}
		if results[i] != nil {
			if connectionLost(results[i]) {
				return results[i]
			}
			t.seq, t.hash = seq, hash
			if _, err := ptx.Exec(ctx, "ROLLBACK TO SAVEPOINT req"); err != nil {
				return errs.Wrap(errs.Unavailable, err, "roll back a failed write")
			}
		}
		if _, err := ptx.Exec(ctx, "RELEASE SAVEPOINT req"); err != nil {
			return errs.Wrap(errs.Unavailable, err, "release savepoint")
		}
	}
	if err := ptx.Commit(ctx); err != nil {
		// The connection may have died after COMMIT reached the server.
		return errs.Wrap(errs.Unavailable, unreachable{err}, "commit (the outcome is unknown if the connection was lost)")
	}
	return nil
}

// connectionLost reports whether err is a failure of the database rather
// than of the request: the batch cannot go on.
func connectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P: operator intervention
		// (shutdown, crash); 53: insufficient resources.
		return len(pe.Code) == 5 && (pe.Code[:2] == "08" || pe.Code[:3] == "57P" || pe.Code[:2] == "53")
	}
	if errs.KindOf(err) == errs.Unavailable {
		return true
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) || isNetError(err)
}

// dbFailed reports whether err came from the database: after it the
// transaction accepts nothing but a rollback.
func dbFailed(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// appendEvent seals ev after the current head and inserts it.
func (t *tx) appendEvent(ev *audit.Event) error {
	if ev.Time.IsZero() {
		ev.Time = t.now().UTC().Round(0)
	}
	ev.Seq = t.seq + 1
	ev.Seal(t.hash)
	_, err := t.tx.Exec(t.ctx, `INSERT INTO events (seq, time, kind, actor, authority, subject, data, prev, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		ev.Seq, ev.Time.UnixNano(), ev.Kind, ev.Actor, ev.Authority, ev.Subject, columns.NullBytes(ev.Data), ev.Prev, ev.Hash)
	if err != nil {
		return dbError(err, "append audit event %d", ev.Seq)
	}
	t.seq, t.hash = ev.Seq, ev.Hash
	return nil
}

func (t *tx) exec(q string, args ...any) (pgconn.CommandTag, error) {
	return t.tx.Exec(t.ctx, q, args...)
}

// exists runs a query that selects two booleans.
func (t *tx) exists(q string, args ...any) (a, b bool, err error) {
	err = t.tx.QueryRow(t.ctx, q, args...).Scan(&a, &b)
	return a, b, err
}
