package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"signet/internal/audit"
	"signet/internal/backup"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/home"
	"signet/internal/kms"
	"signet/internal/store"
	"signet/internal/store/postgres"
	"signet/internal/store/sqlite"
)

// cmdBackup writes the home into one encrypted archive, or (--verify)
// checks one.
func cmdBackup(e *env, args []string) error {
	f := newFlags(e, "backup")
	out := f.String("out", "", "write the encrypted archive to `FILE` (mode 0600, replaced atomically)")
	recipient := f.String("recipient", "", "encrypt to the age X25519 `RECIPIENT` (age1...); restore then takes its --identity")
	pass := f.String("passphrase", "", "encrypt with a passphrase from `SRC`: prompt (asked twice), env:VAR or file:PATH")
	verify := f.String("verify", "", "check the archive `FILE` (decrypt, read, verify its audit log) without restoring it")
	identity := f.String("identity", "", "with --verify: the age identity `FILE` of an archive made with --recipient")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *verify != "" {
		if *out != "" || *recipient != "" {
			return badUsage("--verify checks an archive: give it --passphrase or --identity, not --out or --recipient")
		}
		return verifyBackup(e, *verify, *identity, *pass, *asJSON)
	}
	if *out == "" {
		return badUsage("give --out FILE for the archive")
	}
	if *identity != "" {
		return badUsage("--identity is for --verify and restore; a backup is made for a --recipient")
	}
	r, err := backupRecipient(*recipient, *pass)
	if err != nil {
		return err
	}
	h, err := openHomeToRead(e, f)
	if err != nil {
		return err
	}
	defer h.Close()
	// The database's snapshot is made in the home, 0600 like the database,
	// and goes into the archive as a SQLite file whatever the store.
	tmp := filepath.Join(h.Dir, ".backup-"+rand.Text()+".db")
	defer os.Remove(tmp)
	db := strings.TrimPrefix(h.Config.Store, "sqlite:")
	if err := snapshotStore(e.ctx, h, db, tmp); err != nil {
		return err
	}
	seq, head, err := snapshotHead(e.ctx, tmp)
	if err != nil {
		return err
	}
	// An archive written into the home is not backed up with the next.
	var inHome []string
	abs, aerr := filepath.Abs(*out)
	hd, herr := filepath.Abs(h.Dir)
	if aerr == nil && herr == nil {
		if rel, err := filepath.Rel(hd, abs); err == nil && filepath.IsLocal(rel) {
			inHome = append(inHome, filepath.ToSlash(rel))
		}
	}
	files, err := backup.HomeFiles(h.Dir, filepath.ToSlash(filepath.Clean(db)), inHome...)
	if err != nil {
		return err
	}
	tokenKeys, err := homeTokenKeys(e.ctx, h.Store)
	if err != nil {
		return err
	}
	m := backup.Manifest{Version: 1, Created: time.Now().UTC().Truncate(time.Second), HeadSeq: seq, Head: hex.EncodeToString(head),
		Files: files, TokenKeys: tokenKeys}
	if err := config.ReplaceFile(*out, 0o600, func(w io.Writer) error { return backup.Write(w, r, m, h.Dir, tmp) }); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]any{"out": *out, "manifest": m})
	}
	fmt.Fprintf(e.stdout, "backup %s: the database at audit event %d and %d files of %s\n", *out, seq, len(files), h.Dir)
	for _, k := range tokenKeys {
		fmt.Fprintf(e.stdout, "  not in the backup (on a token; back it up with the token's own means): %s\n", k)
	}
	return nil
}

// cmdRestore makes a new home from a backup.
func cmdRestore(e *env, args []string) error {
	f := newFlags(e, "restore")
	pass := f.String("passphrase", "", "the archive's passphrase from `SRC`: prompt, env:VAR or file:PATH")
	identity := f.String("identity", "", "the age identity `FILE` of an archive made with --recipient")
	storeURL := f.String("store", "", "restore the database into the empty PostgreSQL database `postgres://USER@HOST/DB` (in one transaction) instead of SQLite in the home")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return badUsage("give the archive: signet restore FILE --home DIR")
	}
	if *storeURL != "" && !config.IsPostgres(*storeURL) {
		return badUsage("--store takes a postgres:// URL (without it the database is restored as SQLite in the home)")
	}
	dir, err := filepath.Abs(f.homeDir())
	if err != nil {
		return errs.Wrap(errs.Malformed, err, "home %s", f.homeDir())
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return errs.New(errs.Conflict, "%s is not empty: restore into a new directory (signet never restores over a home)", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errs.Wrap(errs.Unavailable, err, "home %s", dir)
	}
	id, err := backupIdentity(*identity, *pass)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return errs.Wrap(errs.Unavailable, err, "home %s", dir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".restore-*")
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "home %s", dir)
	}
	defer os.RemoveAll(tmp) // gone once renamed into place
	m, seq, err := openBackup(e.ctx, rest[0], id, tmp, func(st *sqlite.Store, m backup.Manifest) error {
		data, _ := json.Marshal(audit.RestoreData{Seq: m.HeadSeq, Head: m.Head})
		err := st.AppendEvent(e.ctx, audit.Event{Time: time.Now().UTC(), Kind: audit.KindRestore, Actor: "cli",
			Subject: filepath.Base(rest[0]), Data: data})
		if err != nil || *storeURL == "" {
			return err
		}
		// Schema and rows, the restore event included, in one transaction
		// into a database that must hold no store yet.
		return postgres.Create(e.ctx, *storeURL, st)
	})
	if err != nil {
		return err
	}
	if *storeURL != "" {
		if err := setStore(tmp, *storeURL); err != nil {
			return errs.Wrap(errs.KindOf(err), err, "the database is restored into %s; the home is not", config.RedactStore(*storeURL))
		}
	} else if cfg, err := config.Load(tmp); err != nil {
		return err
	} else if config.IsPostgres(cfg.Store) {
		// A PostgreSQL home restored without --store keeps its database
		// in the home as SQLite.
		if err := setStore(tmp, backup.DatabaseName); err != nil {
			return err
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errs.Wrap(errs.Unavailable, err, "home %s", dir)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return errs.Wrap(errs.Unavailable, err, "home %s", dir)
	}
	fmt.Fprintf(e.stdout, "restored %s into %s: audit log verified up to event %d, restore recorded as event %d\n", rest[0], dir, m.HeadSeq, seq)
	for _, k := range m.TokenKeys {
		fmt.Fprintf(e.stdout, "  on a token, not in the backup: %s\n", k)
	}
	return nil
}

// setStore points the restored home at dir to its database: the
// PostgreSQL store at a postgres:// URL (the SQLite file the backup held is
// removed), or that file, named as the home's SQLite database.
func setStore(dir, to string) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	if config.IsPostgres(to) {
		db := backup.DatabaseName
		if !config.IsPostgres(cfg.Store) {
			db = strings.TrimPrefix(cfg.Store, "sqlite:")
		}
		db = filepath.Join(dir, db)
		for _, p := range []string{db, db + "-wal", db + "-shm"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return errs.Wrap(errs.Unavailable, err, "remove %s", p)
			}
		}
	}
	cfg.Store = to
	if err := os.Remove(filepath.Join(dir, config.FileName)); err != nil {
		return errs.Wrap(errs.Unavailable, err, "rewrite signet.toml")
	}
	return config.Write(dir, cfg)
}

// verifyBackup checks an archive in a private temporary directory.
func verifyBackup(e *env, file, identity, pass string, asJSON bool) error {
	id, err := backupIdentity(identity, pass)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "signet-verify-*")
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "temporary directory")
	}
	defer os.RemoveAll(tmp)
	m, _, err := openBackup(e.ctx, file, id, tmp, nil)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, map[string]any{"ok": true, "manifest": m})
	}
	fmt.Fprintf(e.stdout, "backup %s ok: made %s, audit log verified up to event %d (head %s)\n", file, m.Created.Format(time.RFC3339), m.HeadSeq, m.Head)
	for _, name := range m.Files {
		fmt.Fprintf(e.stdout, "  %s\n", name)
	}
	for _, k := range m.TokenKeys {
		fmt.Fprintf(e.stdout, "  on a token, not in the backup: %s\n", k)
	}
	return nil
}

// openBackup extracts file into dir, puts the database where the restored
// signet.toml names it, and verifies its audit log up to the manifest's
// head; then runs then, if given, on the open store. It returns the
// manifest and the store's newest event.
func openBackup(ctx context.Context, file string, id age.Identity, dir string, then func(*sqlite.Store, backup.Manifest) error) (backup.Manifest, int64, error) {
	in, err := os.Open(file)
	if err != nil {
		return backup.Manifest{}, 0, errs.Wrap(errs.NotFound, err, "backup %s", file)
	}
	defer in.Close()
	m, err := backup.Extract(in, id, dir)
	if err != nil {
		return m, 0, err
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return m, 0, errs.Wrap(errs.Rejected, err, "the backup's signet.toml")
	}
	// A backup of a PostgreSQL home holds its snapshot as the SQLite file
	// DatabaseName; restore decides where it goes.
	db := strings.TrimPrefix(cfg.Store, "sqlite:")
	if config.IsPostgres(cfg.Store) {
		db = backup.DatabaseName
	} else if !filepath.IsLocal(db) {
		return m, 0, errs.New(errs.Rejected, "the backup's signet.toml names the store %s, not a database in the home", config.RedactStore(cfg.Store))
	}
	path := filepath.Join(dir, db)
	if db != backup.DatabaseName {
		err := os.MkdirAll(filepath.Dir(path), 0o700)
		if err == nil {
			err = os.Rename(filepath.Join(dir, backup.DatabaseName), path)
		}
		if err != nil {
			return m, 0, errs.Wrap(errs.Unavailable, err, "restore the database")
		}
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return m, 0, errs.Wrap(errs.KindOf(err), err, "the backup's database")
	}
	defer st.Close()
	rep, err := audit.Verify(ctx, st)
	if err != nil {
		return m, 0, errs.Wrap(errs.Rejected, err, "the backup's audit log does not verify (%s)", rep.Reason)
	}
	seq, head, _, err := st.AuditHead(ctx, 0)
	if err != nil {
		return m, 0, err
	}
	if seq != m.HeadSeq || hex.EncodeToString(head) != m.Head {
		return m, 0, errs.New(errs.Rejected, "the backup's database ends at event %d, its manifest says %d: not one backup", seq, m.HeadSeq)
	}
	if then != nil {
		if err := then(st, m); err != nil {
			return m, 0, err
		}
		if seq, _, _, err = st.AuditHead(ctx, 0); err != nil {
			return m, 0, err
		}
	}
	return m, seq, st.Close()
}

// snapshotStore writes a consistent copy of the home's database into the
// new SQLite file tmp: SQLite's VACUUM INTO for a database in the home, a
// read-only REPEATABLE READ transaction for PostgreSQL (the nodes sharing
// it go on serving).
func snapshotStore(ctx context.Context, h *home.Home, db, tmp string) error {
	if pg, ok := h.Store.(*postgres.Store); ok {
		return pg.Snapshot(ctx, func(src postgres.Source) error {
			_, err := sqlite.Load(ctx, tmp, src)
			return err
		})
	}
	if !filepath.IsLocal(db) {
		return errs.New(errs.Unavailable, "signet backup copies a SQLite database inside the home or a PostgreSQL store; this home's database is %s: back it up with sqlite3's .backup and copy the home's files", db)
	}
	// VACUUM INTO fills an empty file: made here, 0600, as the database.
	t, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "backup: the home %s must be writable for the snapshot", h.Dir)
	}
	t.Close()
	return sqlite.Snapshot(ctx, filepath.Join(h.Dir, db), tmp)
}

// snapshotHead reads the newest audit event of the snapshot at path.
func snapshotHead(ctx context.Context, path string) (int64, []byte, error) {
	st, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		return 0, nil, err
	}
	defer st.Close()
	seq, head, _, err := st.AuditHead(ctx, 0)
	return seq, head, err
}

// homeTokenKeys lists the key URIs of the home's authorities and SSH CA
// keys that live on tokens, redacted.
func homeTokenKeys(ctx context.Context, st store.Store) ([]string, error) {
	auths, err := st.Authorities(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range auths {
		uris := []string{a.KeyURI}
		keys, err := st.SSHKeys(ctx, a.Name)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			uris = append(uris, k.KeyURI)
		}
		for _, u := range uris {
			if strings.HasPrefix(u, "pkcs11:") && !slices.Contains(out, kms.Redact(u)) {
				out = append(out, kms.Redact(u))
			}
		}
	}
	return out, nil
}

// backupRecipient is the age recipient of a new archive: exactly one of an
// X25519 recipient and a passphrase source.
func backupRecipient(recipient, pass string) (age.Recipient, error) {
	switch {
	case (recipient == "") == (pass == ""):
		return nil, badUsage("give one of --recipient age1... and --passphrase SRC")
	case recipient != "":
		r, err := age.ParseX25519Recipient(recipient)
		if err != nil {
			return nil, errs.Wrap(errs.Malformed, err, "--recipient")
		}
		return r, nil
	}
	src, err := kms.ParseSource(pass)
	if err != nil {
		return nil, err
	}
	secret, err := src.ReadNew("passphrase for the backup")
	if err != nil {
		return nil, err
	}
	if err := kms.CheckLength(secret, kms.MinPassphrase, "passphrase for the backup", src); err != nil {
		return nil, err
	}
	r, err := age.NewScryptRecipient(string(secret))
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "--passphrase")
	}
	return r, nil
}

// backupIdentity is what opens an archive: exactly one of an age identity
// file and a passphrase source.
func backupIdentity(identity, pass string) (age.Identity, error) {
	switch {
	case (identity == "") == (pass == ""):
		return nil, badUsage("give one of --identity FILE and --passphrase SRC")
	case identity != "":
		b, err := os.ReadFile(identity)
		if err != nil {
			return nil, errs.Wrap(errs.NotFound, err, "--identity")
		}
		ids, err := age.ParseIdentities(strings.NewReader(string(b)))
		if err != nil || len(ids) == 0 {
			return nil, errs.New(errs.Malformed, "--identity %s holds no age identity", identity)
		}
		return ids[0], nil
	}
	src, err := kms.ParseSource(pass)
	if err != nil {
		return nil, err
	}
	secret, err := src.Read("passphrase of the backup")
	if err != nil {
		return nil, err
	}
	id, err := age.NewScryptIdentity(string(secret))
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "--passphrase")
	}
	return id, nil
}
