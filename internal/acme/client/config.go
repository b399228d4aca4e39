package client

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/kms"
)

// Config is the client side's configuration file (--config): the server,
// the account key and the tokens that pkcs11: key URIs name, as in a
// home's signet.toml, and for signet agent the certificates it manages.
// Secrets are never in it, only their sources.
type Config struct {
	Server     string `toml:"server,omitempty" comment:"ACME directory URL"`
	CABundle   string `toml:"ca_bundle,omitempty" comment:"PEM file of the roots the server's HTTPS certificate and the issued chains must chain to (default: the system's)"`
	AccountKey string `toml:"account_key,omitempty" comment:"account key URI: pkcs11:token=T;object=O or file:PATH (default: an encrypted file, see README)"`
	KeyType    string `toml:"key_type,omitempty" comment:"type of keys generated here (default ecdsa-p256)"`
	Passphrase string `toml:"passphrase,omitempty" comment:"passphrase source of file: keys: env:VAR, file:PATH or prompt"`
	EABKID     string `toml:"eab_kid,omitempty"`
	EABHMAC    string `toml:"eab_hmac,omitempty" comment:"external account binding HMAC key source"`
	// Tokens are PKCS#11 tokens by label, as in signet.toml.
	Tokens map[string]config.Token `toml:"tokens,omitempty"`
	// RetryBackoff is the first wait after a failed renewal (signet agent).
	RetryBackoff config.Duration `toml:"retry_backoff,omitempty" comment:"first wait after a failed renewal, doubled after each failure up to 6h (default 1m)"`
	// Certificates are those signet agent manages.
	Certificates []Certificate `toml:"certificate,omitempty"`
	// SSHHosts are SSH host certificates the host renews itself from a
	// signet server (signet ssh renew-host), renewed by signet agent.
	SSHHosts []SSHHost `toml:"ssh_host,omitempty"`

	dir string // of the file, for relative paths
}

// SSHHost is an SSH host certificate signet agent renews with the host
// key, at two thirds of its lifetime.
type SSHHost struct {
	Name     string   `toml:"name" comment:"name of this certificate in the agent's output"`
	Server   string   `toml:"server" comment:"signet server URL, https://host:port (its root in ca_bundle)"`
	HostKey  string   `toml:"host_key" comment:"the host's private key file (OpenSSH, unencrypted, as sshd reads it)"`
	CertFile string   `toml:"cert_file" comment:"its certificate (KEY-cert.pub), replaced atomically when renewed"`
	Reload   []string `toml:"reload,omitempty" comment:"command run after renewal, as an argument list (no shell), e.g. [\"systemctl\", \"reload\", \"ssh\"]"`
}

// Certificate is one certificate signet agent keeps renewed and installed.
type Certificate struct {
	Name    string   `toml:"name" comment:"name of this certificate in state and status"`
	DNS     []string `toml:"dns,omitempty"`
	IP      []string `toml:"ip,omitempty"`
	Key     string   `toml:"key,omitempty" comment:"certificate key URI (pkcs11:..., kept across renewals); absent: a new key each renewal, written in clear to key_file"`
	Profile string   `toml:"profile,omitempty"`
	Challenges
	CertFile      string   `toml:"cert_file,omitempty" comment:"where the certificate is installed"`
	ChainFile     string   `toml:"chain_file,omitempty"`
	FullchainFile string   `toml:"fullchain_file,omitempty"`
	KeyFile       string   `toml:"key_file,omitempty" comment:"where a new key is installed (mode 0600 unless key_mode)"`
	Owner         string   `toml:"owner,omitempty" comment:"user owning the installed files"`
	Group         string   `toml:"group,omitempty"`
	Mode          string   `toml:"mode,omitempty" comment:"mode of the installed certificate files, octal (default 0644)"`
	KeyMode       string   `toml:"key_mode,omitempty" comment:"mode of the installed key file, octal (default 0600)"`
	Reload        []string `toml:"reload,omitempty" comment:"command run after installation, as an argument list (no shell)"`
}

// LoadConfig reads and checks a client configuration file. Relative paths
// and file: sources in it are relative to its directory.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "reading --config")
	}
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return nil, errs.New(errs.Malformed, "%s: unknown settings:\n%s", path, strict.String())
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, errs.New(errs.Malformed, "%s, line %d, column %d: %s", path, row, col, strings.TrimPrefix(de.Error(), "toml: "))
		}
		return nil, errs.Wrap(errs.Malformed, err, "%s", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "%s", path)
	}
	c.dir = filepath.Dir(abs)
	if err := c.validate(); err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "%s", path)
	}
	return &c, nil
}

// Path makes a path of the file relative to its directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Source makes a file: source's path relative to the file's directory.
func (c *Config) Source(src string) string {
	if c.dir == "" {
		return src
	}
	return config.SourceInHome(c.dir, src)
}

// KeyURI makes a file: key URI's path relative to the file's directory.
func (c *Config) KeyURI(uri string) string {
	if p, ok := strings.CutPrefix(uri, "file:"); ok {
		return "file:" + c.Path(p)
	}
	return uri
}

func (c *Config) validate() error {
	problems := config.TokenProblems(c.Tokens)
	for _, s := range []struct{ name, v string }{{"passphrase", c.Passphrase}, {"eab_hmac", c.EABHMAC}} {
		if s.v != "" {
			if _, err := kms.ParseSource(s.v); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", s.name, err))
			}
		}
	}
	if c.KeyType != "" {
		if _, err := kms.ParseKeyType(c.KeyType); err != nil {
			problems = append(problems, fmt.Sprintf("key_type: %v", err))
		}
	}
	seen := map[string]bool{}
	for i, m := range c.Certificates {
		where := fmt.Sprintf("certificate %d (%s)", i+1, m.Name)
		switch {
		case m.Name == "" || strings.ContainsAny(m.Name, "/\\ \t\n") || m.Name == "." || m.Name == "..":
			problems = append(problems, fmt.Sprintf("certificate %d: give it a name (letters, digits, dots, dashes)", i+1))
		case seen[m.Name]:
			problems = append(problems, fmt.Sprintf("%s: the name is used twice", where))
		}
		seen[m.Name] = true
		if len(m.DNS) == 0 && len(m.IP) == 0 {
			problems = append(problems, where+": give dns or ip names")
		}
		for _, s := range m.IP {
			if net.ParseIP(s) == nil {
				problems = append(problems, fmt.Sprintf("%s: ip %q is not an IP address", where, s))
			}
		}
		if m.CertFile == "" && m.FullchainFile == "" {
			problems = append(problems, where+": give cert_file or fullchain_file")
		}
		if m.Key == "" && m.KeyFile == "" {
			problems = append(problems, where+": give key (a pkcs11: URI) or key_file (a new key each renewal)")
		}
		if m.Key != "" && !strings.HasPrefix(m.Key, "pkcs11:") && !strings.HasPrefix(m.Key, "file:") {
			problems = append(problems, where+": key must be a pkcs11: or file: URI")
		}
		for _, mode := range []string{m.Mode, m.KeyMode} {
			if _, err := ParseMode(mode, 0); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			}
		}
	}
	if len(problems) > 0 {
		return errs.New(errs.Malformed, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// ParseMode reads an octal file mode such as "0640"; def if s is empty.
func ParseMode(s string, def os.FileMode) (os.FileMode, error) {
	if s == "" {
		return def, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, errs.New(errs.Malformed, "mode %q is not an octal file mode such as 0640", s)
	}
	return os.FileMode(m), nil
}

// KeyOptions says how keys open: module and PIN of each token from
// [tokens], the passphrase of file: keys. flags, when set, apply to tokens
// not listed (--module, --pin) and replace the passphrase.
func (c *Config) KeyOptions(module, pin, passphrase string) (kms.Options, error) {
	o := kms.Options{Module: module, Tokens: map[string]kms.Token{}}
	for _, label := range slices.Sorted(maps.Keys(c.Tokens)) {
		o.Tokens[label] = c.Tokens[label].KMS(c.dir)
	}
	if passphrase == "" {
		passphrase = c.Source(c.Passphrase)
	}
	var err error
	if pin != "" {
		if o.PIN, err = kms.ParseSource(pin); err != nil {
			return o, err
		}
	}
	if passphrase != "" {
		if o.Passphrase, err = kms.ParseSource(passphrase); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Interactive lists the secret sources that would ask on a terminal: a
// daemon refuses them.
func (c *Config) Interactive() []string {
	var found []string
	for _, label := range slices.Sorted(maps.Keys(c.Tokens)) {
		if p := c.Tokens[label].PIN; p == "prompt" || p == string(kms.Unlock) {
			found = append(found, fmt.Sprintf("tokens.%s.pin = %q", label, p))
		}
	}
	for _, s := range []struct{ name, v string }{{"passphrase", c.Passphrase}, {"eab_hmac", c.EABHMAC}} {
		if s.v == "prompt" || s.v == string(kms.Unlock) {
			found = append(found, fmt.Sprintf("%s = %q", s.name, s.v))
		}
	}
	return found
}

// DefaultAccountKey is the account key used when none is given: an
// encrypted file per server host, under dir/accounts.
func DefaultAccountKey(dir, server string) string {
	host := "default"
	if u, err := url.Parse(server); err == nil && u.Host != "" {
		host = strings.NewReplacer(":", "_", "/", "_").Replace(u.Host)
	}
	return "file:" + filepath.Join(dir, "accounts", host, "account.key")
}
