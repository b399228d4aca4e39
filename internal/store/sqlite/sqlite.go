// Package sqlite is the single-node store: one SQLite file in WAL mode with
// synchronous=FULL, written by sqlstore's group-committing writer and read
// through a pool of read-only connections that never wait for it. What is
// SQLite's own is here: the file, its pragmas, the schema, the checkpointer
// and the error codes.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/sqlstore"
)

// Store is a store.Store in one SQLite file.
type Store struct {
	*sqlstore.Store
	read   *sql.DB
	write  *sql.DB
	cp     *checkpointer
	closer sync.Once
}

var _ store.Store = (*Store)(nil)

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	readers         int
	busyTimeout     time.Duration
	checkpointEvery time.Duration
	restartFrames   int
}

// WithReaders sets the size of the read connection pool (default
// 4×GOMAXPROCS, at least 8; audit.Verify holds two at once).
func WithReaders(n int) Option { return func(o *options) { o.readers = max(n, 2) } }

// WithBusyTimeout sets how long a connection waits for a lock held by
// another process (default 10s).
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// withCheckpointEvery sets the background checkpointer's interval (tests).
func withCheckpointEvery(d time.Duration) Option { return func(o *options) { o.checkpointEvery = d } }

// withRestartFrames sets the WAL length at which the writer checkpoints
// it itself (tests).
func withRestartFrames(n int) Option { return func(o *options) { o.restartFrames = n } }

// Open opens or creates the database at path (created with mode 0600) and
// brings its schema up to date.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{readers: max(8, 4*runtime.GOMAXPROCS(0)), busyTimeout: 10 * time.Second,
		checkpointEvery: 100 * time.Millisecond, restartFrames: 16384}
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, errs.New(errs.Malformed, "sqlite store path %q must be a plain file name", path)
	}
	// SQLite would create the file with the umask's mode; the CA's state is
	// not for other users. The -wal and -shm files inherit this mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return nil, errs.New(errs.Unavailable, "cannot write the database %s (%v): this command changes the home and needs write access to it (list, show and audit verify read a read-only home)", path, errors.Unwrap(err))
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "open database %s", path)
	}
	f.Close()

	// The writer's connections (the writer's and the checkpointer's) are
	// durable: WAL, fsync at every commit. The checkpointer copies the WAL
	// back in the background so that commits do not wait for it; but
	// SQLite starts the WAL over only after a checkpoint that copied all of
	// it, which under steady writes the background one never finishes (a
	// ten-million-certificate load grew the WAL by gigabytes a minute). So
	// the writer's own automatic checkpoint stays on at restartFrames
	// (16,384 frames, about 64 MiB): a commit that leaves the WAL that long
	// checkpoints it in the writer, where no write can slip in, copying the
	// little the background has not, and the next write starts the WAL
	// over. Statement journals of the per-write savepoints stay in
	// memory. Their page cache is SQLite's default 2 MiB: the writer
	// touches the newest pages of each index and a few it updates, the OS
	// caches the file, and a 32 MiB cache measured no faster once full,
	// slower while it filled (each new page a fresh page fault), and held
	// 30 MiB more per process (BENCHMARKS.md).
	busy := "&_pragma=busy_timeout(" + strconv.FormatInt(o.busyTimeout.Milliseconds(), 10) + ")"
	s := &Store{}
	fail := func(err error) (*Store, error) {
		s.Close()
		return nil, err
	}
	s.write, err = sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"+
		"&_pragma=temp_store(MEMORY)&_pragma=cache_size(-2000)&_pragma=wal_autocheckpoint("+strconv.Itoa(o.restartFrames)+")"+busy)
	if err != nil {
		return fail(errs.Wrap(errs.Unavailable, err, "open database %s", path))
	}
	s.write.SetMaxOpenConns(2)
	if err := sqlstore.Migrate(ctx, &dialect, s.write, schema, time.Now()); err != nil {
		return fail(err)
	}
	s.read, err = sql.Open("sqlite", path+"?_pragma=query_only(1)"+busy)
	if err != nil {
		return fail(errs.Wrap(errs.Unavailable, err, "open database %s", path))
	}
	s.read.SetMaxOpenConns(o.readers)
	s.read.SetMaxIdleConns(o.readers)
	if s.Store, err = sqlstore.New(ctx, &dialect, s.read, s.write, sqlstore.Options{MaxBatch: 512}); err != nil {
		return fail(err)
	}
	cpConn, err := s.write.Conn(ctx)
	if err != nil {
		return fail(errs.Wrap(errs.Unavailable, err, "open database %s", path))
	}
	s.cp = startCheckpointer(cpConn, o.checkpointEvery)
	return s, nil
}

// schemaBehind is OpenReadOnly's error for a database whose schema is not
// this signet's: only Open can migrate it.
type schemaBehind string

func (s schemaBehind) Error() string { return string(s) }

// SchemaBehind reports whether err is OpenReadOnly's for a database whose
// schema Open would migrate first.
func SchemaBehind(err error) bool {
	var s schemaBehind
	return errors.As(err, &s)
}

// OpenReadOnly opens the database at path for reading only, for commands
// that only read: it creates and changes nothing, so it works on a home
// its user may not write (a read-only mount, a backup). A database left
// with no -wal file (closed cleanly) in a directory where SQLite cannot
// make its -shm file is read as immutable. Its schema must be up to date;
// writes fail.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, errs.New(errs.Malformed, "sqlite store path %q must be a plain file name", path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "open database %s", path)
	}
	uri, err := fileURI(path)
	if err != nil {
		return nil, err
	}
	s, err := openReadOnly(ctx, uri+"?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)", path)
	if err != nil && errs.KindOf(err) == errs.Unavailable {
		if _, werr := os.Stat(path + "-wal"); errors.Is(werr, os.ErrNotExist) {
			s, err = openReadOnly(ctx, uri+"?immutable=1&_pragma=query_only(1)", path)
		}
	}
	return s, err
}

func openReadOnly(ctx context.Context, dsn, path string) (*Store, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "open database %s", path)
	}
	db.SetMaxOpenConns(8)
	var have int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&have); err != nil {
		db.Close()
		return nil, dialect.Error(err, "read the schema version of %s", path)
	}
	if have != len(migrations) {
		db.Close()
		return nil, &errs.Error{Kind: errs.Unavailable, Err: schemaBehind(fmt.Sprintf(
			"the database %s has schema version %d, this signet reads %d: run signet once where the home is writable, or use the signet that made it", path, have, len(migrations)))}
	}
	s := &Store{read: db}
	if s.Store, err = sqlstore.New(ctx, &dialect, db, db, sqlstore.Options{MaxBatch: 1}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close lets queued writes commit, then closes every connection.
func (s *Store) Close() error {
	var err error
	s.closer.Do(func() {
		if s.Store != nil {
			err = s.Store.Close()
		}
		if s.cp != nil {
			s.cp.close()
		}
		if s.write != nil {
			err = errors.Join(err, s.write.Close())
		}
		if s.read != nil {
			err = errors.Join(err, s.read.Close())
		}
	})
	return err
}

// dialect is what SQLite does its own way. BEGIN IMMEDIATE takes the
// file's write lock at once: the batch then reads the chain head that no
// other process can move until COMMIT.
var dialect = sqlstore.Dialect{
	Begin:        []string{"BEGIN IMMEDIATE"},
	PrepareReads: true, // the driver prepares every query anew otherwise
	IndexHints:   true,
	Kind:         kind,
	// The one row of revocation_version, under the write lock.
	NextRevocationVersion: "UPDATE revocation_version SET version = version + 1 RETURNING version",
}

// kind classifies an SQLite error for sqlstore.Dialect: a lock another
// process holds past the busy timeout, a file that cannot be read or
// written, a full disk are Unavailable, as a lost server is on PostgreSQL.
func kind(err error) errs.Kind {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return errs.Internal
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return errs.Conflict
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return errs.NotFound
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_FULL, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
		return errs.Unavailable
	}
	return errs.Internal
}

// Snapshot writes a consistent copy of the database at path to out, which
// must not exist: VACUUM INTO reads in one transaction, so a serving
// signet's writers go on and the copy holds every transaction committed
// before it began and none after. It needs its own connection: a read-only
// one may not run VACUUM.
func Snapshot(ctx context.Context, path, out string) error {
	if _, err := os.Stat(path); err != nil {
		return errs.Wrap(errs.Unavailable, err, "open database %s", path)
	}
	uri, err := fileURI(path)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", uri+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "open database %s", path)
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", out)
	return dialect.Error(err, "snapshot the database %s into %s", path, out)
}

// fileURI is the file: URI of path, made absolute: a relative path would
// be read as the URI's authority (file://home/signet.db), so that a
// relative --home failed to open.
func fileURI(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", errs.Wrap(errs.Unavailable, err, "open database %s", path)
	}
	return (&url.URL{Scheme: "file", Path: abs}).String(), nil
}
