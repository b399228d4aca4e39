package store

import "time"

// Observed is a store whose writes can be watched (store/sqlstore, so
// both SQLite and PostgreSQL).
type Observed interface {
	// ObserveCommits sets who is told of each transaction the store's
	// writer commits or fails.
	ObserveCommits(o CommitObserver)
}

// CommitObserver is told of each write transaction (package metrics):
// how many writes it took together (group commit), how long it ran from
// BEGIN to COMMIT, and err when it failed as a whole.
type CommitObserver interface {
	Commit(writes int, d time.Duration, err error)
}
