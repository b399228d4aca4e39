package home

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"signet/internal/acme/eab"
	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store/postgres"
	"signet/internal/store/sqlite"
)

// InitOptions describe a new home.
type InitOptions struct {
	RootKey      string      // existing key URI for the root; "" generates a software key
	AuthorityKey string      // existing key URI for the default authority; "" generates one beside the root key
	KeyType      kms.KeyType // type of generated keys; "" is ecdsa-p256
	Unlock       Unlock      // module, PIN and passphrase sources, also written to signet.toml
	CommonName   string      // root CN; "" is ca.DefaultRootName ("signet root" and the root key's ID)
	Organization string      // root O, which authorities repeat; "" is the host name
	BaseURL      string      // where CRLs and OCSP will be served; "": http://<http_listen>
	Listen       string      // HTTPS listener; "": the default of config.Default
	HTTPListen   string      // plain-HTTP listener for CRLs and OCSP; "": config.DefaultHTTPListen
	Store        string      // store setting (a postgres:// URL); "": signet.db in the home
	AdminToken   string      // source of an operator-given admin token (at least kms.MinAdminToken characters); "": generated
	Actor        string
}

// Report says what Init created, for the operator.
type Report struct {
	Dir             string   `json:"home"`
	Config          string   `json:"config"`
	Database        string   `json:"database"`
	RootKey         string   `json:"root_key"`
	AuthorityKey    string   `json:"authority_key"`
	GeneratedKeys   []string `json:"generated_keys,omitempty"`
	AdminTokenFile  string   `json:"admin_token_file"`
	TrialPassphrase string   `json:"trial_passphrase_file,omitempty"` // set when Init made up a passphrase
}

// Init creates a home in dir: configuration, database, root and the
// authority "default" (purpose tls-server). It refuses an existing home.
// Init completes or leaves nothing behind in dir (see leaveNothing), so
// that a retry, after a wrong PIN say, starts afresh.
func Init(ctx context.Context, dir string, o InitOptions) (_ *Home, _ *Report, err error) {
	if Exists(dir) {
		return nil, nil, errs.New(errs.Conflict, "%s is a signet home already", dir)
	}
	undo, err := leaveNothing(dir)
	if err != nil {
		return nil, nil, err
	}
	var generated []string // software keys, which may be in a keys directory that was there before
	defer func() {
		if err != nil {
			for _, uri := range generated {
				if p, ok := strings.CutPrefix(uri, "file:"); ok {
					os.Remove(config.InHome(dir, p))
				}
			}
			undo()
		}
	}()
	if o.KeyType == "" {
		o.KeyType = kms.ECDSAP256
	}
	cfg := config.Default()
	cfg.Keys = config.Keys{PKCS11Module: o.Unlock.Module, PIN: o.Unlock.PIN, Passphrase: o.Unlock.Passphrase}
	cfg.BaseURL = o.BaseURL
	if o.Listen != "" {
		cfg.Listen = o.Listen
	}
	if o.HTTPListen != "" {
		cfg.HTTPListen = o.HTTPListen
	}
	if o.Store != "" {
		cfg.Store = o.Store
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	rep := &Report{Dir: dir, Config: filepath.Join(dir, config.FileName), Database: config.RedactStore(config.InHome(dir, cfg.Store))}

	// What is stored names no module or PIN source: those go to [tokens].
	for _, k := range []*string{&o.RootKey, &o.AuthorityKey} {
		bare, label, tok, ok, err := kms.SplitURI(*k)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			ct := config.Token{Module: tok.Module, PIN: string(tok.PIN), Serial: tok.Serial}
			if cur, listed := cfg.Tokens[label]; listed && cur != ct {
				return nil, nil, errs.New(errs.Conflict, "--key and --authority-key name token %q with different modules or PIN sources", label)
			}
			cfg.Tokens[label] = ct
		}
		*k = bare
	}
	// A token --key names bare opens with --module and --pin: they are
	// listed as its [tokens.LABEL] rather than as [keys]' defaults.
	if o.Unlock.Module != "" || o.Unlock.PIN != "" {
		onToken := false
		for _, k := range []string{o.RootKey, o.AuthorityKey} {
			if p, err := kms.ParseURI(k); err == nil && strings.HasPrefix(k, "pkcs11:") && p.Token != "" {
				if _, listed := cfg.Tokens[p.Token]; !listed {
					cfg.Tokens[p.Token] = config.Token{Module: o.Unlock.Module, PIN: o.Unlock.PIN}
				}
				onToken = true
			}
		}
		if onToken {
			cfg.Keys.PKCS11Module, cfg.Keys.PIN = "", ""
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	rep.RootKey, rep.AuthorityKey = o.RootKey, o.AuthorityKey
	if rep.RootKey == "" {
		rep.RootKey = "file:keys/root.key"
	}
	if rep.AuthorityKey == "" {
		rep.AuthorityKey = BesideKey(rep.RootKey, "default")
	}
	// A passphrase is needed only where a key is a file: a home whose keys
	// are all on a token gets none.
	software := !strings.HasPrefix(rep.RootKey, "pkcs11:") || !strings.HasPrefix(rep.AuthorityKey, "pkcs11:")
	// Secrets the operator gives are checked before anything is written
	// (a prompt is asked once, when the keys are generated, and checked then).
	if software && cfg.Keys.Passphrase != "" && cfg.Keys.Passphrase != "prompt" {
		if err := checkNewSecret(dir, cfg.Keys.Passphrase, kms.MinPassphrase, "passphrase for the new keys"); err != nil {
			return nil, nil, err
		}
	}
	if o.AdminToken != "" {
		if err := checkNewSecret(dir, o.AdminToken, kms.MinAdminToken, "admin token"); err != nil {
			return nil, nil, err
		}
		cfg.Server.AdminToken = o.AdminToken
	}
	if software && cfg.Keys.Passphrase == "" {
		rep.TrialPassphrase = filepath.Join(dir, "passphrase")
		if err := writeSecret(rep.TrialPassphrase); err != nil {
			return nil, nil, err
		}
		cfg.Keys.Passphrase = "file:passphrase"
	}
	rep.AdminTokenFile = filepath.Join(dir, "admin-token")
	if o.AdminToken != "" {
		rep.AdminTokenFile = o.AdminToken
	} else if err := writeSecret(rep.AdminTokenFile); err != nil {
		return nil, nil, err
	}
	// Created here, not on first use, so that every node copied from this
	// home opens the EAB keys another node sealed.
	if err := writeSecret(filepath.Join(dir, eab.KEKFile)); err != nil {
		return nil, nil, err
	}
	if err := config.Write(dir, cfg); err != nil {
		return nil, nil, err
	}
	cfg.HasTokens = true
	// On PostgreSQL the new home is made in a SQLite file of the home
	// first, then copied with the schema in one transaction (finish).
	staged := cfg
	if config.IsPostgres(cfg.Store) {
		staged.Store = stagingDB
	}
	h, err := open(ctx, dir, staged, Unlock{}, true)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Home, *Report, error) {
		h.Close()
		return nil, nil, err
	}
	for _, uri := range []string{rep.RootKey, rep.AuthorityKey} {
		if uri != o.RootKey && uri != o.AuthorityKey {
			if err := h.GenerateKey(ctx, uri, o.KeyType, o.Actor); err != nil {
				return fail(err)
			}
			rep.GeneratedKeys = append(rep.GeneratedKeys, uri)
			generated = append(generated, uri)
		}
	}
	org := o.Organization
	if org == "" {
		org, _ = os.Hostname()
	}
	if _, err := h.CA.CreateRoot(ctx, ca.RootSpec{CommonName: o.CommonName, Organization: org, KeyURI: rep.RootKey, Actor: o.Actor}); err != nil {
		return fail(err)
	}
	// The key that signs audit checkpoints, beside the root key.
	auditURI, err := h.AuditKeyURI(ctx)
	if err != nil {
		return fail(err)
	}
	// A root key given on a token may have one beside it already.
	if _, err := h.Keys.Signer(ctx, auditURI); errs.KindOf(err) == errs.NotFound {
		if err := h.GenerateKey(ctx, auditURI, kms.Ed25519, o.Actor); err != nil {
			return fail(err)
		}
		generated = append(generated, auditURI)
		rep.GeneratedKeys = append(rep.GeneratedKeys, auditURI)
	} else if err != nil {
		return fail(err)
	}
	if _, _, err := h.AuditKey(ctx, o.Actor); err != nil {
		return fail(err)
	}
	_, err = h.CA.CreateAuthority(ctx, ca.AuthoritySpec{
		Name: cfg.Server.Authority, Purpose: profile.TLSServer, KeyURI: rep.AuthorityKey, Actor: o.Actor,
		Policy: policy.Policy{DNS: []string{"*"}, IP: []string{"*"}}, ACME: true, // the first serve offers ACME
	})
	if err != nil {
		return fail(err)
	}
	if staged.Store != cfg.Store {
		return finish(ctx, h, cfg, rep)
	}
	return h, rep, nil
}

// stagingDB is the SQLite file a new home on PostgreSQL is made in.
const stagingDB = ".init.db"

// finish copies a home made in stagingDB to its PostgreSQL database, schema
// and rows in one transaction, and returns it on that database.
func finish(ctx context.Context, staged *Home, cfg config.Config, rep *Report) (*Home, *Report, error) {
	defer func() {
		staged.Store.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(filepath.Join(staged.Dir, stagingDB+suffix))
		}
	}()
	src, ok := staged.Store.(*sqlite.Store)
	if !ok {
		return nil, nil, errs.New(errs.Internal, "the new home was not staged in SQLite")
	}
	if err := postgres.Create(ctx, cfg.Store, src); err != nil {
		staged.Keys.Close()
		return nil, nil, errs.Wrap(errs.KindOf(err), err, "creating the store %s", config.RedactStore(cfg.Store))
	}
	st, err := OpenStore(ctx, staged.Dir, cfg.Store, false)
	if err != nil {
		staged.Keys.Close()
		return nil, nil, err
	}
	h, err := newHome(staged.Dir, cfg, st, staged.Keys, staged.unlock)
	if err != nil {
		st.Close()
		staged.Keys.Close()
		return nil, nil, err
	}
	return h, rep, nil
}

// leaveNothing notes what dir holds (creating it if it does not exist) and
// returns a function that removes whatever was added since: the whole
// directory if Init made it, else each new entry, and the software keys
// Init generated.
func leaveNothing(dir string) (func(), error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "creating the home %s", dir)
		}
		return func() { os.RemoveAll(dir) }, nil
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "reading %s, the directory for the new home", dir)
	}
	before := map[string]bool{}
	for _, e := range entries {
		before[e.Name()] = true
	}
	return func() {
		now, _ := os.ReadDir(dir)
		for _, e := range now {
			if !before[e.Name()] {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}, nil
}

// checkNewSecret reads a new secret from its source and refuses it if it
// is shorter than min characters.
func checkNewSecret(dir, source string, min int, what string) error {
	src, err := kms.ParseSource(config.SourceInHome(dir, source))
	if err != nil {
		return err
	}
	b, err := src.Read(what)
	if err != nil {
		return err
	}
	defer clear(b)
	return kms.CheckLength(b, min, what, src)
}

// GenerateKeyBesideRoot makes a new key named name next to the root key
// (on the same token, or in the same key directory) and returns its URI.
func (h *Home) GenerateKeyBesideRoot(ctx context.Context, name string, t kms.KeyType, actor string) (string, error) {
	root, err := h.Store.Authority(ctx, ca.RootName)
	if err != nil {
		return "", err
	}
	uri := BesideKey(root.KeyURI, name)
	return uri, h.GenerateKey(ctx, uri, t, actor)
}

// GenerateKey makes a new key and records the act in the audit log.
func (h *Home) GenerateKey(ctx context.Context, uri string, t kms.KeyType, actor string) error {
	_, err := h.GenerateSigner(ctx, uri, t, actor)
	return err
}

// GenerateSigner is GenerateKey returning the new key, for callers that
// show its public half.
func (h *Home) GenerateSigner(ctx context.Context, uri string, t kms.KeyType, actor string) (crypto.Signer, error) {
	signer, err := h.Keys.Generate(ctx, uri, t)
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(map[string]string{"type": string(t)})
	err = h.Store.AppendEvent(ctx, audit.Event{
		Time: time.Now().UTC(), Kind: audit.KindKeyGenerate, Actor: actor, Subject: uri, Data: data,
	})
	if err != nil {
		return nil, err
	}
	return signer, nil
}

// BesideKey names a new key next to uri: file:keys/root.key gives
// file:keys/NAME.key; pkcs11:token=T;object=O gives pkcs11:token=T;object=O-NAME.
func BesideKey(uri, name string) string {
	if p, ok := strings.CutPrefix(uri, "file:"); ok {
		return "file:" + filepath.Join(filepath.Dir(p), name+".key")
	}
	u, err := kms.ParseURI(uri)
	if err != nil {
		return uri + "-" + name
	}
	u.Object, u.ID = u.Object+"-"+name, nil
	return u.String()
}
