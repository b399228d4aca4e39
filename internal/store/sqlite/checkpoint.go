package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// checkpointer copies the WAL back into the database file from its own
// connection, so that the writer's commits never wait for a checkpoint's
// two fsyncs. The writer's automatic checkpoint is turned off.
type checkpointer struct {
	stop, done chan struct{}
}

func startCheckpointer(conn *sql.Conn, every time.Duration) *checkpointer {
	c := &checkpointer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer conn.Close()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
				// PASSIVE never blocks the writer or readers; what it cannot
				// copy now is copied on a later tick. Failures are retried
				// the same way, and the WAL stays correct meanwhile.
				_, _ = conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	return c
}

func (c *checkpointer) close() {
	close(c.stop)
	<-c.done
}
