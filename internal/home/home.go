// Package home owns a signet home: the directory with signet.toml, the
// SQLite database (unless signet.toml names a PostgreSQL one) and any
// software keys. It wires configuration, store, keys, lint gate and CA
// together, and creates new homes.
package home

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"signet/internal/acme/eab"
	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/lint"
	"signet/internal/sshca"
	"signet/internal/store"
	"signet/internal/store/postgres"
	"signet/internal/store/sqlite"
)

// Home is an opened home, ready to issue.
type Home struct {
	Dir    string
	Config config.Config
	Store  store.Store
	Keys   *kms.Manager
	CA     *ca.CA
	SSH    *sshca.CA // SSH certificates for the ssh-host and ssh-user authorities
	// Notices say what opening the home changed to follow its
	// configuration (settleACME), for the operator.
	Notices []string

	unlock Unlock // this run's flags (AdoptKeyURI lists a token's)
}

// Unlock overrides the configured key sources for one run (CLI flags).
type Unlock struct {
	Module     string
	PIN        string
	Passphrase string
}

// Open loads dir's configuration and opens its store and keys.
func Open(ctx context.Context, dir string, u Unlock) (*Home, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	// Homes made before Init wrote the EAB key-encryption key get it on
	// their first open. Copy such a home to further nodes only after that.
	if _, err := os.Stat(filepath.Join(dir, eab.KEKFile)); errors.Is(err, os.ErrNotExist) {
		if err := writeSecret(filepath.Join(dir, eab.KEKFile)); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	h, err := open(ctx, dir, cfg, u, false)
	if err != nil {
		return nil, err
	}
	if h.Notices, err = h.settleACME(ctx); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// OpenReadOnly opens dir for a command that only reads (list, show, audit
// verify...): it writes nothing, neither in the home nor in an SQLite
// database (opened read-only), so that it works on a home its user may not
// write. What Open settles on the way (the EAB key of older homes, token
// settings stored in key URIs, ACME settings) waits for the next Open.
func OpenReadOnly(ctx context.Context, dir string) (*Home, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	var st store.Store
	if config.IsPostgres(cfg.Store) {
		st, err = OpenStore(ctx, dir, cfg.Store, false)
	} else {
		path := config.InHome(dir, strings.TrimPrefix(cfg.Store, "sqlite:"))
		if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
			return nil, errs.New(errs.NotFound, "the database %s of the home %s is missing: restore it from a backup (signet never makes a new one for an existing home; signet init makes a new home)", path, dir)
		}
		st, err = sqlite.OpenReadOnly(ctx, path)
		if sqlite.SchemaBehind(err) {
			return Open(ctx, dir, Unlock{}) // made by an older signet: migrated first
		}
	}
	if err != nil {
		return nil, err
	}
	keys, err := keyManager(dir, cfg, Unlock{})
	if err != nil {
		st.Close()
		return nil, err
	}
	h, err := newHome(dir, cfg, st, keys, Unlock{})
	if err != nil {
		st.Close()
		keys.Close()
	}
	return h, err
}

// open opens what cfg names; only Init creates the store (create).
func open(ctx context.Context, dir string, cfg config.Config, u Unlock, create bool) (*Home, error) {
	st, err := OpenStore(ctx, dir, cfg.Store, create)
	if err != nil {
		return nil, err
	}
	if err := moveTokenSettings(ctx, dir, &cfg, st, u); err != nil {
		st.Close()
		return nil, err
	}
	keys, err := keyManager(dir, cfg, u)
	if err != nil {
		st.Close()
		return nil, err
	}
	h, err := newHome(dir, cfg, st, keys, u)
	if err != nil {
		st.Close()
		keys.Close()
	}
	return h, err
}

// newHome wires a store and keys into a Home.
func newHome(dir string, cfg config.Config, st store.Store, keys *kms.Manager, u Unlock) (*Home, error) {
	gate, err := lint.New()
	if err != nil {
		return nil, err
	}
	return &Home{
		Dir: dir, Config: cfg, Store: st, Keys: keys, unlock: u,
		CA:  ca.New(ca.Options{Store: st, Keys: keys, Lint: gate, BaseURL: cfg.RevocationBaseURL()}),
		SSH: sshca.New(sshca.Options{Store: st, Keys: keys}),
	}, nil
}

// OpenStore opens the store a configuration names: a postgres:// URL (the
// store several nodes share), else a SQLite file, relative to the home,
// optionally written "sqlite:PATH". Only with create does a missing SQLite
// file become a new, empty database: a home whose database went missing
// would otherwise carry on with no certificates and an empty audit log.
func OpenStore(ctx context.Context, dir, dsn string, create bool) (store.Store, error) {
	if config.IsPostgres(dsn) {
		return postgres.Open(ctx, dsn)
	}
	if strings.Contains(dsn, "://") {
		return nil, errs.New(errs.Malformed, "store %q: want a SQLite file or a postgres:// URL", config.RedactStore(dsn))
	}
	path := config.InHome(dir, strings.TrimPrefix(dsn, "sqlite:"))
	if _, err := os.Stat(path); !create && errors.Is(err, fs.ErrNotExist) {
		return nil, errs.New(errs.NotFound, "the database %s of the home %s is missing: restore it from a backup (signet never makes a new one for an existing home; signet init makes a new home)", path, dir)
	}
	return sqlite.Open(ctx, path)
}

// KeyManager opens keys without a home, from the unlock sources and the
// module and PIN source uri names, if any (signet key generate and key list
// on a bare token). It returns uri without them.
func KeyManager(u Unlock, uri string) (*kms.Manager, string, error) {
	bare, label, tok, ok, err := kms.SplitURI(uri)
	if err != nil {
		return nil, "", err
	}
	cfg := config.Config{}
	if ok {
		cfg.Tokens = map[string]config.Token{label: {Module: tok.Module, PIN: string(tok.PIN), Serial: tok.Serial}}
	}
	keys, err := keyManager("", cfg, u)
	return keys, bare, err
}

// keyManager opens keys as cfg says; flags (u) replace [keys] for the run.
// A home's software keys must be in it (kms.Options.Dir).
func keyManager(dir string, cfg config.Config, u Unlock) (*kms.Manager, error) {
	k := cfg.Keys
	o := kms.Options{Dir: dir, Module: cmp.Or(u.Module, k.PKCS11Module), Tokens: map[string]kms.Token{}}
	for label, t := range cfg.Tokens {
		o.Tokens[label] = t.KMS(dir)
	}
	pin, pass := cmp.Or(u.PIN, k.PIN), cmp.Or(u.Passphrase, k.Passphrase)
	var err error
	if pin != "" {
		if o.PIN, err = kms.ParseSource(config.SourceInHome(dir, pin)); err != nil {
			return nil, err
		}
	}
	if pass != "" {
		if o.Passphrase, err = kms.ParseSource(config.SourceInHome(dir, pass)); err != nil {
			return nil, err
		}
	}
	return kms.NewManager(o), nil
}

// Close releases the store and the keys.
func (h *Home) Close() error {
	return errors.Join(h.Store.Close(), h.Keys.Close())
}

// AdminToken reads the API bearer token from its configured source.
func (h *Home) AdminToken() ([]byte, error) {
	src, err := kms.ParseSource(config.SourceInHome(h.Dir, h.Config.Server.AdminToken))
	if err != nil {
		return nil, err
	}
	return src.Read("signet admin token")
}

// EABSealer seals and opens the home's ACME external account binding keys
// under the key-encryption key Init created.
func (h *Home) EABSealer() (*eab.Sealer, error) {
	kek, err := eab.LoadKEK(filepath.Join(h.Dir, eab.KEKFile))
	if err != nil {
		return nil, err
	}
	return eab.NewSealer(kek)
}

// Exists reports whether dir holds a signet home.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, config.FileName))
	return err == nil
}

// writeSecret creates a 0600 file holding 32 random bytes, base64url.
func writeSecret(path string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return errs.Wrap(errs.Internal, err, "random secret")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return errs.Wrap(errs.Conflict, err, "creating %s", path)
	}
	if _, err := f.WriteString(base64.RawURLEncoding.EncodeToString(b) + "\n"); err != nil {
		f.Close()
		return errs.Wrap(errs.Internal, err, "writing %s", path)
	}
	return f.Close()
}
