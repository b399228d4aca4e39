package store

import (
	"context"
	"crypto/sha256"
	"time"

	"signet/internal/errs"
)

// ConsoleSession is a signed-in session of the web console. The store keeps
// the SHA-256 of its ID, never the ID: a copy of the database signs no one in.
type ConsoleSession struct {
	IDHash   []byte // SHA-256 of the session ID
	Operator string // who signed in, as the console's Recheck knows them
	Role     string // their role at sign-in
	// Certificate is the serial of the client certificate the session
	// signed in with, "" for a token: the session ends with it.
	Certificate string
	CreatedAt   time.Time
	SeenAt      time.Time // last use: the idle timeout counts from it
}

// ConsoleSessions are the web console's sessions, in the store so that
// every node sharing it knows them.
type ConsoleSessions interface {
	// CreateConsoleSession records a new session; errs.Conflict if its
	// IDHash exists.
	CreateConsoleSession(ctx context.Context, s ConsoleSession) error
	// ConsoleSession reads a session; errs.NotFound if there is none.
	ConsoleSession(ctx context.Context, idHash []byte) (ConsoleSession, error)
	// TouchConsoleSession sets a session's SeenAt.
	TouchConsoleSession(ctx context.Context, idHash []byte, seen time.Time) error
	// DeleteConsoleSession removes a session (sign-out); none is no error.
	DeleteConsoleSession(ctx context.Context, idHash []byte) error
	// DeleteStaleConsoleSessions removes the sessions last seen before
	// seenBefore or created before createdBefore, and returns how many.
	DeleteStaleConsoleSessions(ctx context.Context, seenBefore, createdBefore time.Time) (int64, error)
}

// CheckConsoleSession refuses a session row that cannot be stored.
func CheckConsoleSession(s ConsoleSession) error {
	switch {
	case len(s.IDHash) != sha256.Size:
		return errs.New(errs.Malformed, "console session: the ID hash must be a SHA-256 (%d bytes)", sha256.Size)
	case s.Operator == "" || s.Role == "":
		return errs.New(errs.Malformed, "console session: an operator and a role are required")
	case s.CreatedAt.IsZero() || s.SeenAt.IsZero():
		return errs.New(errs.Malformed, "console session: creation and last use times are required")
	}
	return nil
}
