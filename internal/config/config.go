// Package config owns a home's node configuration, signet.toml: where the
// store is, how keys are unlocked and how the server listens. Authorities,
// key URIs and certificates live in the store, shared by every node.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/profile"
)

// FileName is the configuration file inside a home.
const FileName = "signet.toml"

// Config is signet.toml as written. Secrets never appear in it: PINs,
// passphrases and the admin token are sources ("env:VAR", "file:PATH",
// "prompt"). Relative paths are relative to the home.
type Config struct {
	Store  string `toml:"store" comment:"SQLite database file (relative to the home), or postgres://USER@HOST/DB?sslmode=verify-full shared by several nodes (password in PGPASSWORD or ~/.pgpass, never here)"`
	Listen string `toml:"listen" comment:"address of the HTTPS listener"`
	// HTTPListen serves CRLs, OCSP and CA certificates over plain HTTP.
	HTTPListen string `toml:"http_listen,omitempty" comment:"address of the plain-HTTP listener for CRLs, OCSP and CA certificates (default 127.0.0.1:8080)"`
	// MetricsListen serves Prometheus metrics at /metrics, unauthenticated.
	MetricsListen string `toml:"metrics_listen,omitempty" comment:"address of the Prometheus /metrics listener, unauthenticated: keep it on loopback or a private network (default 127.0.0.1:9464; off: none)"`
	BaseURL       string `toml:"base_url,omitempty" comment:"URL prefix that certificates name for CRLs, OCSP and issuers (default http://<http_listen>); 'signet authority add --base-url' overrides it per authority"`
	Keys          Keys   `toml:"keys"`
	Server        Server `toml:"server"`
	ACME          ACME   `toml:"acme,omitempty"`
	Limits        Limits `toml:"limits,omitempty" comment:"rate limits of this node; see README, Rate limits"`
	// Tokens lists PKCS#11 tokens by label. A home whose signet.toml has
	// no [tokens] table yet was made before it existed: see HasTokens.
	Tokens map[string]Token `toml:"tokens" comment:"PKCS#11 tokens by label: [tokens.LABEL] with module, pin and, when labels repeat, serial. Tokens not listed use [keys]"`

	// HasTokens is set by Load when the file has a [tokens] table (even an
	// empty one): the home has had its stored key URIs checked for module
	// and PIN settings to move here (see home), once.
	HasTokens bool `toml:"-"`
}

// Token says how this node opens one PKCS#11 token.
type Token struct {
	Module string `toml:"module,omitempty" comment:"PKCS#11 module path"`
	PIN    string `toml:"pin,omitempty" comment:"PIN source: prompt, env:VAR, file:PATH, or unlock (given to the running server: signet unlock)"`
	Serial string `toml:"serial,omitempty" comment:"token serial, to pick one of several tokens with this label"`
}

// ACME configures the ACME server under /acme/<authority>/.
type ACME struct {
	// RequireEAB is the older place of the authorities' require_eab
	// setting: opening the home writes it into the store (home.settleACME).
	RequireEAB []string `toml:"require_eab,omitempty" comment:"authorities whose new ACME accounts need an external account binding; now 'signet authority set NAME --require-eab=true', which opening the home applies for these"`
	// AuthzReuse is AuthzReuseWindow as written; nil: the default.
	AuthzReuse *Duration `toml:"authorization_reuse,omitempty" comment:"how long after its validation a valid ACME authorization is reused by new orders of the same account for the same identifier (default 7d; 0: never, every order validates anew)"`
}

// DefaultAuthzReuse is how long a valid ACME authorization is reused by
// default, as Let's Encrypt did.
const DefaultAuthzReuse = 7 * 24 * time.Hour

// AuthzReuseWindow is how long a valid ACME authorization is reused by
// new orders of its account; 0: never.
func (a ACME) AuthzReuseWindow() time.Duration {
	if a.AuthzReuse == nil {
		return DefaultAuthzReuse
	}
	return time.Duration(*a.AuthzReuse)
}

// Keys says how CA keys are unlocked.
type Keys struct {
	PKCS11Module string `toml:"pkcs11_module,omitempty" comment:"PKCS#11 module of tokens not listed in [tokens]"`
	PIN          string `toml:"pin,omitempty" comment:"PIN source of tokens not listed in [tokens] or listed without one: prompt, env:VAR, file:PATH or unlock"`
	Passphrase   string `toml:"passphrase,omitempty" comment:"passphrase source for software keys: prompt, env:VAR, file:PATH or unlock"`
}

// Server configures signet serve.
type Server struct {
	Authority       string   `toml:"authority" comment:"authority that issues the server's own TLS certificate"`
	Names           []string `toml:"names,omitempty" comment:"names in the server certificate (default: localhost, 127.0.0.1, ::1 and the host name)"`
	AdminToken      string   `toml:"admin_token" comment:"source of the bearer token for the /api/v1 issuance API"`
	AdminAuthority  string   `toml:"admin_authority,omitempty" comment:"tls-client authority whose valid certificates may also use the /api/v1 API"`
	ShutdownTimeout Duration `toml:"shutdown_timeout,omitempty" comment:"how long a graceful shutdown waits for requests"`
}

// Default is the configuration signet init writes for a new home.
func Default() Config {
	return Config{
		Store:      "signet.db",
		Listen:     "127.0.0.1:8443",
		HTTPListen: DefaultHTTPListen,
		Server:     Server{Authority: "default", AdminToken: "file:admin-token", ShutdownTimeout: Duration(10 * time.Second)},
		Tokens:     map[string]Token{},
	}
}

// DefaultMetricsListen is where serve's /metrics is by default.
const DefaultMetricsListen = "127.0.0.1:9464"

// DefaultHTTPListen is where a home's CRLs and OCSP are served by default.
const DefaultHTTPListen = "127.0.0.1:8080"

// RevocationBaseURL is the base URL of authorities that have none of their own.
func (c Config) RevocationBaseURL() string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	if c.HTTPListen != "" {
		return "http://" + c.HTTPListen
	}
	return "http://" + DefaultHTTPListen
}

// Load reads and validates home/signet.toml. Unknown keys are errors.
func Load(home string) (Config, error) {
	path := filepath.Join(home, FileName)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, errs.New(errs.NotFound, "%s does not exist: run 'signet init --home %s' first", path, home)
	}
	if err != nil {
		return Config{}, errs.Wrap(errs.Unavailable, err, "reading configuration")
	}
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return Config{}, errs.New(errs.Malformed, "%s: unknown settings:\n%s", path, strict.String())
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return Config{}, errs.New(errs.Malformed, "%s, line %d, column %d: %s", path, row, col, strings.TrimPrefix(de.Error(), "toml: "))
		}
		return Config{}, errs.Wrap(errs.Malformed, err, "%s", path)
	}
	if err := c.Validate(); err != nil {
		return Config{}, errs.Wrap(errs.Malformed, err, "%s", path)
	}
	var tables struct {
		Tokens *map[string]any `toml:"tokens"`
	}
	if err := toml.Unmarshal(raw, &tables); err == nil && tables.Tokens != nil {
		c.HasTokens = true
	}
	return c, nil
}

// Write stores c as home/signet.toml (0600), refusing to overwrite.
func Write(home string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	body, err := toml.Marshal(c)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encoding configuration")
	}
	f, err := os.OpenFile(filepath.Join(home, FileName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return errs.Wrap(errs.Conflict, err, "writing configuration")
	}
	header := "# signet node configuration. Secrets never go here: give their sources.\n"
	if _, err := f.Write(append([]byte(header), body...)); err != nil {
		f.Close()
		return errs.Wrap(errs.Internal, err, "writing configuration")
	}
	return f.Close()
}

// AddTokens lists more tokens in home/signet.toml, with note as a comment
// above them: it appends a [tokens.LABEL] table for each, and the [tokens]
// table first if the file has none, leaving the rest of the file and its
// comments as they are. With no tokens it only adds the [tokens] table, if
// missing. The file is replaced atomically and keeps its mode. A label
// listed already is refused.
func AddTokens(home string, add map[string]Token, note string) error {
	path := filepath.Join(home, FileName)
	c, err := Load(home)
	if err != nil {
		return err
	}
	if c.HasTokens && len(add) == 0 {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "reading configuration")
	}
	b := bytes.NewBuffer(raw)
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		b.WriteByte('\n')
	}
	if note != "" {
		fmt.Fprintf(b, "\n# %s\n", note)
	}
	if !c.HasTokens {
		b.WriteString("# PKCS#11 tokens by label: [tokens.LABEL] with module, pin and, when labels\n# repeat, serial. Tokens not listed use [keys].\n[tokens]\n")
	}
	for _, label := range slices.Sorted(maps.Keys(add)) {
		if _, ok := c.Tokens[label]; ok {
			return errs.New(errs.Conflict, "%s lists token %q already: edit its [tokens.%s] entry by hand", path, label, label)
		}
		body, err := toml.Marshal(struct {
			Tokens map[string]Token `toml:"tokens"`
		}{map[string]Token{label: add[label]}})
		if err != nil {
			return errs.Wrap(errs.Internal, err, "encoding token %q", label)
		}
		b.WriteByte('\n')
		b.Write(bytes.TrimPrefix(body, []byte("[tokens]\n")))
	}
	var check Config
	dec := toml.NewDecoder(bytes.NewReader(b.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&check); err != nil {
		return errs.Wrap(errs.Malformed, err, "%s: cannot add the [tokens] entries to it (add them by hand)", path)
	}
	if err := check.Validate(); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "writing %s", path)
	}
	return ReplaceFile(path, fi.Mode().Perm(), func(w io.Writer) error {
		_, err := w.Write(b.Bytes())
		return err
	})
}

// ReplaceFile writes path atomically with the given mode: write fills a
// temporary file beside it, which is synced and renamed over path, so
// readers see the old file or the whole new one, and a failure leaves
// path as it was.
func ReplaceFile(path string, mode os.FileMode, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "writing %s", path)
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		err = write(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return errs.Wrap(errs.Unavailable, err, "writing %s", path)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// TokenProblems lists what is wrong in a [tokens] table.
func TokenProblems(tokens map[string]Token) []string {
	var problems []string
	for _, label := range slices.Sorted(maps.Keys(tokens)) {
		t := tokens[label]
		if t.Module == "" && t.PIN == "" {
			problems = append(problems, fmt.Sprintf("tokens.%s: give module, pin or both", label))
		}
		if t.PIN != "" {
			if _, err := kms.ParseSource(t.PIN); err != nil {
				problems = append(problems, fmt.Sprintf("tokens.%s.pin: %v", label, err))
			}
		}
	}
	return problems
}

// KMS is the token as kms takes it; a file: PIN source's relative path is
// relative to dir.
func (t Token) KMS(dir string) kms.Token {
	return kms.Token{Module: t.Module, PIN: kms.Source(SourceInHome(dir, t.PIN)), Serial: t.Serial}
}

// Validate lists every problem in c at once.
func (c Config) Validate() error {
	var problems []string
	if c.Store == "" {
		problems = append(problems, "store: empty")
	}
	if IsPostgres(c.Store) {
		if u, err := url.Parse(c.Store); err != nil {
			problems = append(problems, fmt.Sprintf("store: %q is not a URL", RedactStore(c.Store)))
		} else if _, ok := u.User.Password(); ok || u.Query().Has("password") {
			problems = append(problems, "store: the URL holds a password; give it in PGPASSWORD or a passfile (~/.pgpass, or passfile= in the URL) instead")
		}
	}
	if c.Listen == "" {
		problems = append(problems, "listen: empty")
	}
	for _, s := range []struct{ name, v string }{{"keys.pin", c.Keys.PIN}, {"keys.passphrase", c.Keys.Passphrase}, {"server.admin_token", c.Server.AdminToken}} {
		if s.v == "" {
			continue
		}
		if _, err := kms.ParseSource(s.v); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", s.name, err))
		}
	}
	problems = append(problems, TokenProblems(c.Tokens)...)
	if c.Server.Authority == "" {
		problems = append(problems, "server.authority: empty")
	}
	if err := profile.CheckBaseURL(c.BaseURL); err != nil {
		problems = append(problems, fmt.Sprintf("base_url: %v", err))
	}
	problems = append(problems, c.Limits.problems()...)
	if len(problems) > 0 {
		return errs.New(errs.Malformed, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// IsPostgres reports whether a store setting names a PostgreSQL database.
func IsPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// RedactStore is a store setting fit for messages: without a password.
func RedactStore(store string) string {
	if u, err := url.Parse(store); err == nil && u.Scheme != "" {
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return store
}

// InHome makes a relative path, or the path of a file: source, relative to home.
func InHome(home, pathOrSource string) string {
	if p, ok := strings.CutPrefix(pathOrSource, "file:"); ok {
		return "file:" + InHome(home, p)
	}
	if pathOrSource == "" || filepath.IsAbs(pathOrSource) || strings.Contains(pathOrSource, ":") {
		return pathOrSource
	}
	return filepath.Join(home, pathOrSource)
}

// SourceInHome makes the path of a file: secret source relative to home;
// the other sources (prompt, env:VAR) name no path and stay as they are.
// A path that begins with $CREDENTIALS_DIRECTORY (kms.CredentialsDir) is
// resolved when the secret is read.
func SourceInHome(home, src string) string {
	if p, ok := strings.CutPrefix(src, "file:"); ok && !strings.HasPrefix(p, "$") {
		return "file:" + InHome(home, p)
	}
	return src
}

// Duration is a time.Duration written as "720h", "30d" or "52w".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// MaxDuration is the longest duration signet accepts anywhere: 100 years
// of 365.25 days. Longer ones are typing mistakes, and near 292 years they
// no longer fit a time.Duration.
const MaxDuration = 36525 * 24 * time.Hour

// ParseDuration accepts Go durations plus whole days ("30d") and weeks
// ("52w"), from zero up to MaxDuration.
func ParseDuration(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseUint(n, 10, 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return 0, errs.New(errs.Malformed, "duration %q: want a whole number before %q", s, suffix)
			}
			if err != nil || v > uint64(MaxDuration/unit) {
				return 0, tooLong(s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, errs.New(errs.Malformed, "duration %q: use forms like 720h, 30d or 52w, at most 100 years", s)
	case v < 0:
		return 0, errs.New(errs.Malformed, "duration %q is negative; give a positive one such as 720h or 30d", s)
	case v > MaxDuration:
		return 0, tooLong(s)
	}
	return v, nil
}

func tooLong(s string) error {
	return errs.New(errs.Malformed, "duration %q is longer than 100 years; give at most 36525d", s)
}
