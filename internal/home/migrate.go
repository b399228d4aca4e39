package home

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"

	"signet/internal/audit"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/store/postgres"
	"signet/internal/store/sqlite"
)

// MigrateReport is what MigrateStore copied and checked.
type MigrateReport struct {
	From   string           `json:"from"`
	To     string           `json:"to"`
	Rows   map[string]int64 `json:"rows"`   // per table
	Events int64            `json:"events"` // verified on the target
	Head   string           `json:"head"`   // audit head, equal on both sides
}

// MigrateStore copies a SQLite store ("sqlite:PATH") into an empty
// PostgreSQL database ("postgres://..."), verbatim: the audit chain is
// verified on the source first and on the target after, and both heads
// must be equal. The source is only read (its schema is brought up to date
// first, as any signet command would).
func MigrateStore(ctx context.Context, from, to string) (*MigrateReport, error) {
	path, ok := strings.CutPrefix(from, "sqlite:")
	if !ok || path == "" {
		return nil, errs.New(errs.Malformed, "--from %q: want sqlite:PATH", from)
	}
	if !config.IsPostgres(to) {
		return nil, errs.New(errs.Malformed, "--to %q: want a postgres:// URL", config.RedactStore(to))
	}
	if _, err := os.Stat(path); err != nil {
		return nil, errs.Wrap(errs.NotFound, err, "source database")
	}
	src, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	before, err := audit.Verify(ctx, src)
	if err != nil {
		return nil, errs.Wrap(errs.KindOf(err), err, "the source's audit log does not verify; not migrating it")
	}
	dst, err := postgres.Open(ctx, to)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	rows, err := dst.Import(ctx, src)
	if err != nil {
		return nil, err
	}
	after, err := audit.Verify(ctx, dst)
	if err == nil && (!bytes.Equal(after.Head, before.Head) || after.Events != before.Events || after.Certificates != before.Certificates) {
		err = errors.New("the copy differs from the source")
	}
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "verify the audit log on the target (source: %d events, head %s)", before.Events, before.HeadHex())
	}
	return &MigrateReport{From: from, To: config.RedactStore(to), Rows: rows, Events: after.Events, Head: after.HeadHex()}, nil
}
