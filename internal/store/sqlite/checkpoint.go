package sqlite

import (
	"context"
	"database/sql"
	"time"

	"signet/internal/errs"
)

// checkpointer copies the WAL back into the database file from its own
// connection, so that the writer's commits seldom wait for a checkpoint's
// two fsyncs. The writer checkpoints itself only once the WAL is long (see
// Open).
type checkpointer struct {
	stop, done chan struct{}
	now        chan chan error // see Store.Checkpoint
}

func startCheckpointer(conn *sql.Conn, every time.Duration) *checkpointer {
	c := &checkpointer{stop: make(chan struct{}), done: make(chan struct{}), now: make(chan chan error)}
	go func() {
		defer close(c.done)
		defer conn.Close()
		tick := time.NewTicker(every)
		defer tick.Stop()
		// PASSIVE never blocks the writer or readers; what it cannot copy
		// now is copied on a later tick. Failures are retried the same way,
		// and the WAL stays correct meanwhile.
		checkpoint := func() error {
			_, err := conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
			return err
		}
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
				_ = checkpoint()
			case done := <-c.now:
				done <- checkpoint()
			}
		}
	}()
	return c
}

// Checkpoint runs a PASSIVE checkpoint now, as the background checkpointer
// does every so often, and returns when it is done: it copies the WAL's
// frames into the database file except those a reader still needs, which a
// later checkpoint copies. Benchmarks call it so that a round of writes
// pays for its own copy.
func (s *Store) Checkpoint(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case s.cp.now <- done:
	case <-s.cp.done:
		return errs.New(errs.Unavailable, "store is closed")
	case <-ctx.Done():
		return errs.Wrap(errs.Unavailable, ctx.Err(), "checkpoint")
	}
	select {
	case err := <-done:
		if err != nil {
			return errs.Wrap(errs.Unavailable, err, "checkpoint")
		}
		return nil
	case <-ctx.Done():
		return errs.Wrap(errs.Unavailable, ctx.Err(), "checkpoint")
	}
}

func (c *checkpointer) close() {
	close(c.stop)
	<-c.done
}
