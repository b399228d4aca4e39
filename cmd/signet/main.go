// Command signet is a private certificate authority: keys in PKCS#11 tokens,
// one authority per purpose, every certificate linted and recorded.
//
// This file holds the command table and the flag plumbing; each command's
// work is done by the internal packages.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"signet/internal/errs"
	"signet/internal/home"
	"signet/internal/kms"
)

// command is one entry of the command table.
type command struct {
	name    string
	summary string
	usage   string // arguments after the command name
	run     func(e *env, args []string) error
}

// env is what a command runs with: streams and the context.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"init", "create a home: configuration, database, root and the authority \"default\"", "[--home DIR] [--key URI | --key-type T] [--authority-key URI] [--module PATH] [--pin SRC] [--passphrase SRC] [--admin-token SRC] [--listen ADDR] [--http-listen ADDR] [--store postgres://...]", cmdInit},
		{"serve", "run the HTTPS server with its ACME server, and the plain-HTTP CRL/OCSP listener (creates a home with defaults on first start)", "[--home DIR] [--listen ADDR] [--http-listen ADDR] [--acme-resolver HOST:PORT] [--acme-http-port N] [--acme-tls-port N]", cmdServe},
		{"unlock", "give the running server a token's PIN (or the software keys' passphrase) whose source is 'unlock'; asked on the terminal, tried once", "[--authority NAME | --token LABEL] [--server URL] [--fingerprint SHA256] [--force]", cmdUnlock},
		{"lock", "make the running server forget a PIN or passphrase given with signet unlock", "[--authority NAME | --token LABEL] [--server URL] [--fingerprint SHA256]", cmdLock},
		{"status", "show each authority's key, state (unlocked, locked, unavailable, disabled), CA expiry and counts, from the running server or else the home", "[--server URL] [--fingerprint SHA256] [--json]", cmdStatus},
		{"issue", "issue a certificate from an authority", "--authority NAME (--csr FILE | --new-key OUT (--key-passphrase SRC | --clear-key) | --subject-key pkcs11:... [--to-token]) [--dns N]... [--ip A]... [--email E]... [--validity 720h] (--out CERT | --cert-out CERT) [--chain-out CHAIN]", cmdIssue},
		{"list", "list certificates", "[--authority NAME] [--status valid|revoked|expired] [--name TEXT] [--expiring 7d] [--all] [--internal] [--deployed] [--limit N] [--json]", cmdList},
		{"show", "show one certificate", "SERIAL [--pem] [--json]", cmdShow},
		{"revoke", "revoke a certificate", "SERIAL [--reason keyCompromise|superseded|cessationOfOperation|...] [--json]", cmdRevoke},
		{"crl", "sign every CRL shard of an authority and write them as DIR/<authority>/<shard>.crl, or (--whole) its whole CRL to FILE", "--authority NAME [--out DIR] [--validity 24h] | --authority NAME --whole [--pem] --out FILE|-", cmdCrl},
		{"root", "print the root certificate (PEM), or the trust anchor of an authority: itself if self-signed, else the root", "[--authority NAME]", cmdRoot},
		{"chain", "print an authority's certificate chain (PEM), issuing authority first, without the root (a self-signed authority's is its certificate)", "--authority NAME [--root]", cmdChain},
		{"authority add", "add an issuing authority", "NAME --purpose P (--key URI | --generate [--key-type T]) [--allow-dns D]... [--allow-ip CIDR]... [--allow-email E]... [--base-url URL] [--shards N] [--acme] [--self-signed]", cmdAuthorityAdd},
		{"authority set", "change an authority's settings", "NAME [--acme=true|false] [--require-eab=true|false] [--enabled=true|false] [--json]", cmdAuthoritySet},
		{"authority disable", "take an authority out of service: it issues nothing; its certificate, CRLs and OCSP stay served", "NAME [--json]", cmdAuthorityDisable},
		{"authority enable", "put an authority back in service", "NAME [--json]", cmdAuthorityEnable},
		{"authority list", "list authorities", "[--json]", cmdAuthorityList},
		{"key generate", "generate a key on a PKCS#11 token (or an encrypted software key)", "--uri URI --type T [--module PATH] [--pin SRC] [--passphrase SRC] [--json]", cmdKeyGenerate},
		{"key csr", "make a certificate request signed by a key on a token (no home needed)", "--uri 'pkcs11:token=T;object=NAME' [--module PATH] [--pin SRC] (--cn NAME | --dns NAME... | --email ADDR...) --out FILE", cmdKeyCSR},
		{"key import-cert", "write a key's certificate (and with --chain its issuers) to the token beside the key (no home needed)", "--uri 'pkcs11:token=T;object=NAME' [--module PATH] [--pin SRC] --cert FILE [--chain] [--json]", cmdKeyImportCert},
		{"key list", "list the tokens of the PKCS#11 modules, their keys and the authorities that use them", "[--uri 'pkcs11:token=T'] [--module PATH] [--pin SRC] [--json]", cmdKeyList},
		{"ssh sign", "sign an SSH host or user public key; writes NAME-cert.pub", "--authority NAME (--host | --user) --principals a,b [--validity 52w] [--key-id ID] [--force-command CMD] [--source-address CIDR] [--no-port-forwarding ...] PUBKEY_FILE", cmdSSHSign},
		{"ssh trust", "print the known_hosts / TrustedUserCAKeys lines to install", "--authority NAME [--pattern HOSTS]", cmdSSHTrust},
		{"ssh krl", "write the authority's OpenSSH key revocation list", "--authority NAME [--out FILE]", cmdSSHKRL},
		{"ssh revoke", "revoke SSH certificates by serial or key ID, or a CA key", "--authority NAME (--serial N | --key-id ID | --ca-key FINGERPRINT)", cmdSSHRevoke},
		{"ssh renew-host", "client: a host renews its own SSH host certificate with its host key (no home, no admin credential)", "--server URL --host-key FILE --cert FILE [--ca-bundle PEM] [--out FILE]", cmdSSHRenewHost},
		{"ssh inspect", "show an SSH certificate as ssh-keygen -L does", "CERT_FILE", cmdSSHInspect},
		{"ssh list", "list SSH certificates", "[--authority NAME] [--key-id ID] [--json]", cmdSSHList},
		{"ssh key add", "add a CA key to an SSH authority (rollover)", "--authority NAME (--generate [--key-type T] | --key URI) [--activate]", cmdSSHKeyAdd},
		{"ssh key activate", "make a CA key the one that signs", "--authority NAME FINGERPRINT", cmdSSHKeyActivate},
		{"ssh key retire", "stop trusting a CA key", "--authority NAME FINGERPRINT", cmdSSHKeyRetire},
		{"ssh key list", "list SSH authorities' CA keys", "[--authority NAME] [--json]", cmdSSHKeyList},
		{"store migrate", "copy a SQLite store into an empty PostgreSQL database that several nodes can share", "--from sqlite:PATH --to postgres://USER@HOST/DB [--json]", cmdStoreMigrate},
		{"acme certonly", "client: obtain a certificate from any ACME server, keys on tokens or encrypted files (no home needed)", "[--config FILE] --server URL [--ca-bundle PEM] [--account-key URI] [--key URI | --key-on-token URI | --clear-key] (--dns N | --ip A)... (--http-01 standalone:PORT | --webroot DIR | --tls-alpn-01 PORT | --dns-01 exec:CMD | --dns-01 rfc2136 --dns-server HOST:PORT --dns-zone Z --tsig-name N --tsig-secret SRC) [--profile NAME] [--eab-kid ID --eab-hmac SRC] [--module PATH] [--pin SRC] [--passphrase SRC] --out DIR", cmdACMECertonly},
		{"acme account rollover", "client: move an ACME account to a new key", "[--config FILE] --server URL [--ca-bundle PEM] [--account-key URI] --new-account-key URI [--module PATH] [--pin SRC]", cmdACMEAccountRollover},
		{"acme account deactivate", "client: deactivate an ACME account for good", "[--config FILE] --server URL [--ca-bundle PEM] [--account-key URI] [--module PATH] [--pin SRC]", cmdACMEAccountDeactivate},
		{"acme revoke", "client: revoke a certificate with the ACME account key", "CERT [--config FILE] --server URL [--ca-bundle PEM] [--account-key URI] [--reason CODE] [--module PATH] [--pin SRC]", cmdACMERevoke},
		{"agent", "client: keep the certificates of a configuration renewed and installed (renewal information, else 2/3 of the lifetime); runs as a daemon unless --once", "--config FILE [--state DIR] [--once] [--dry-run]", cmdAgent},
		{"agent status", "client: show each managed certificate, its expiry and next renewal", "--config FILE [--state DIR] [--json]", cmdAgentStatus},
		{"acme eab create", "server: create an ACME external account binding key (printed once)", "--authority NAME [--json]", cmdACMEEABCreate},
		{"backup", "write the home (a consistent database snapshot, signet.toml, encrypted keys, sealed secrets) into one age-encrypted archive, or check one", "--out FILE (--recipient age1... | --passphrase SRC) | --verify FILE (--identity FILE | --passphrase SRC) [--json]", cmdBackup},
		{"restore", "make a new home from a backup: decrypt, verify its audit log, record the restore as an audit event", "FILE --home DIR (--identity FILE | --passphrase SRC) [--store postgres://...]", cmdRestore},
		{"operator add", "add a named operator with a role; prints its personal API token once", "NAME --role viewer|operator|admin [--json]", cmdOperatorAdd},
		{"operator list", "list operators and their roles", "[--json]", cmdOperatorList},
		{"operator remove", "remove an operator: its token stops working at once on every node", "NAME [--json]", cmdOperatorRemove},
		{"audit verify", "check the audit log's hash chain and the rows it records", "[--checkpoint FILE|URL [--key VKEY]] [--json]", cmdAuditVerify},
		{"audit key", "print the verifier key of the audit key that signs checkpoints", "", cmdAuditKey},
		{"check", "check a TLS endpoint: protocols, suites, chain, names, expiry, revocation, and what signet issued for it; exit 0 ok, 1 warnings, 2 failures", "HOST[:PORT] [--starttls xmpp|xmpp-server|smtp|postgres] [--name NAME] [--ca FILE] [--record] [--json] | --all [--json]", cmdCheck},
		{"version", "print the version, and what this build cannot do", "", cmdVersion},
	}
}

var version = "dev"

// noPKCS11 is what version and help say in a build without cgo, which
// cannot load PKCS#11 modules.
const noPKCS11 = "This signet was built without PKCS#11 (CGO_ENABLED=0): it uses file: keys only; keys on tokens need a signet built with cgo."

func cmdVersion(e *env, _ []string) error {
	fmt.Fprintln(e.stdout, "signet", version)
	if !kms.PKCS11 {
		fmt.Fprintln(e.stdout, noPKCS11)
	}
	return nil
}

// stopSignals end a command gracefully: serve stops accepting, finishes
// what it serves within its shutdown timeout and exits 0 (systemd stops a
// service with SIGTERM).
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a command and turns its error into an exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, args)
		return 0
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		if prefix, sub := group(args); len(sub) > 0 {
			w, code := stderr, 2
			if len(args) > len(strings.Fields(prefix)) && isHelp(args[len(strings.Fields(prefix))]) {
				w, code = stdout, 0
			} else if n := len(strings.Fields(prefix)); len(args) > n {
				fmt.Fprintf(stderr, "signet: unknown command %q; these are the %s commands:\n", strings.Join(args[:n+1], " "), prefix)
			} else {
				fmt.Fprintf(stderr, "signet %s: give one of its commands:\n", prefix)
			}
			groupUsage(w, prefix, sub)
			return code
		}
		fmt.Fprintf(stderr, "signet: unknown command %q; run 'signet help' for the list\n", strings.Join(args[:min(2, len(args))], " "))
		return 2
	}
	err := cmd.run(e, rest)
	var status exitStatus
	if errors.As(err, &status) {
		if status.err != nil {
			fmt.Fprintf(stderr, "signet %s: %v\n", cmd.name, status.err)
		}
		return status.code
	}
	switch {
	case err == nil:
		return 0
	case err == flag.ErrHelp:
		return 0
	case errs.KindOf(err) == errs.Malformed && isUsage(err):
		fmt.Fprintf(stderr, "signet %s: %v\nusage: signet %s %s\n", cmd.name, err, cmd.name, cmd.usage)
		return 2
	}
	fmt.Fprintf(stderr, "signet %s: %v\n", cmd.name, err)
	return 1
}

func lookup(args []string) (*command, []string) {
	table := commands()
	for n := min(3, len(args)); n >= 1; n-- {
		name := strings.Join(args[:n], " ")
		for i := range table {
			if table[i].name == name {
				return &table[i], args[n:]
			}
		}
	}
	return nil, nil
}

func isHelp(arg string) bool { return arg == "help" || arg == "-h" || arg == "--help" }

// group finds the commands named by the leading words of args, such as
// "authority" or "ssh key": the longest prefix that names some.
func group(args []string) (string, []command) {
	for n := min(2, len(args)); n >= 1; n-- {
		prefix := strings.Join(args[:n], " ")
		var sub []command
		for _, c := range commands() {
			if strings.HasPrefix(c.name, prefix+" ") {
				sub = append(sub, c)
			}
		}
		if len(sub) > 0 {
			return prefix, sub
		}
	}
	return "", nil
}

func groupUsage(w io.Writer, prefix string, sub []command) {
	fmt.Fprintf(w, "usage: signet %s COMMAND [flags]\n\ncommands:\n", prefix)
	for _, c := range sub {
		fmt.Fprintf(w, "  %-23s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'signet %s COMMAND --help' for its flags.\n", prefix)
}

func usage(w io.Writer, args []string) {
	if len(args) > 1 {
		if cmd, _ := lookup(args[1:]); cmd != nil {
			fmt.Fprintf(w, "usage: signet %s %s\n\n%s\n\nRun 'signet %s --help' for its flags.\n", cmd.name, cmd.usage, cmd.summary, cmd.name)
			return
		}
		if prefix, sub := group(args[1:]); len(sub) > 0 {
			groupUsage(w, prefix, sub)
			return
		}
	}
	fmt.Fprint(w, `signet is a private certificate authority: CA keys in PKCS#11 tokens (or
encrypted software keys), one authority per purpose, every certificate
linted with zlint and recorded in a tamper-evident audit log.

usage: signet COMMAND [flags]

commands of the CA (they work on a home):
`)
	var client []command
	for _, c := range commands() {
		if summary, ok := strings.CutPrefix(c.summary, "client: "); ok {
			c.summary = summary
			client = append(client, c)
			continue
		}
		fmt.Fprintf(w, "  %-23s %s\n", c.name, strings.TrimPrefix(c.summary, "server: "))
	}
	fmt.Fprint(w, "\nclient commands (on the machines that get certificates; no home needed):\n")
	for _, c := range client {
		fmt.Fprintf(w, "  %-23s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
The CA's commands take --home DIR (default $SIGNET_HOME, else ~/.local/share/signet).
Secrets are never given on the command line: --pin and --passphrase take a
source, one of prompt, env:VAR or file:PATH.
`)
	if !kms.PKCS11 {
		fmt.Fprintf(w, "\n%s\n", noPKCS11)
	}
}

// exitStatus is an error that chooses the exit status (signet check's
// verdict), printing err if there is one.
type exitStatus struct {
	code int
	err  error
}

func (s exitStatus) Error() string {
	if s.err != nil {
		return s.err.Error()
	}
	return fmt.Sprintf("exit status %d", s.code)
}

// usageError marks a malformed command line, so run prints the usage.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func badUsage(format string, args ...any) error {
	return &errs.Error{Kind: errs.Malformed, Err: usageError{fmt.Sprintf(format, args...)}}
}

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// flags is a flag set for one command that also knows the common flags.
type flags struct {
	*flag.FlagSet
	home   string
	stderr io.Writer
}

// newFlags makes a command's flag set. The flag package's own messages are
// discarded: -h/--help prints the full help (see parse), and on any other
// flag error run prints the error and the one usage line.
func newFlags(e *env, name string) *flags {
	f := &flags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), stderr: e.stderr}
	f.SetOutput(io.Discard)
	f.Usage = func() {}
	f.StringVar(&f.home, "home", "", "signet home `DIR` (default $SIGNET_HOME, else ~/.local/share/signet)")
	return f
}

// help prints the command's usage, summary and flags.
func (f *flags) help() {
	if cmd, _ := lookup(strings.Fields(f.Name())); cmd != nil {
		fmt.Fprintf(f.stderr, "usage: signet %s %s\n\n%s\n\nflags:\n", cmd.name, cmd.usage, cmd.summary)
	}
	f.SetOutput(f.stderr)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// parse accepts flags before, between and after positional arguments.
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if err == flag.ErrHelp {
				f.help()
				return nil, err
			}
			return nil, badUsage("%v", err)
		}
		args = f.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseNone parses a command line that takes flags only.
func (f *flags) parseNone(args []string) error {
	rest, err := f.parse(args)
	if err == nil && len(rest) > 0 {
		err = badUsage("unexpected argument %q", rest[0])
	}
	return err
}

// homeDir resolves --home, then $SIGNET_HOME, then the per-user default.
func (f *flags) homeDir() string {
	if f.home != "" {
		return f.home
	}
	if h := os.Getenv("SIGNET_HOME"); h != "" {
		return h
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "signet")
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".local", "share", "signet")
	}
	return "signet-home"
}

// unlockFlags are the key-unlocking flags several commands share.
type unlockFlags struct{ module, pin, passphrase string }

func (u *unlockFlags) register(f *flags) {
	f.StringVar(&u.module, "module", "", "PKCS#11 module `PATH` (e.g. /usr/lib/softhsm/libsofthsm2.so)")
	f.StringVar(&u.pin, "pin", "", "token PIN `SOURCE`: prompt, env:VAR, file:PATH, or unlock (given to the running server: signet unlock)")
	f.StringVar(&u.passphrase, "passphrase", "", "software key passphrase `SOURCE`: prompt, env:VAR, file:PATH, or unlock (given to the running server: signet unlock)")
}

func (u *unlockFlags) unlock() home.Unlock {
	return home.Unlock{Module: u.module, PIN: absSource(u.pin), Passphrase: absSource(u.passphrase)}
}

// absSource makes a file: source's relative path absolute: on the command
// line it is relative to the working directory (in signet.toml, relative to
// the home), and written to signet.toml absolute.
func absSource(src string) string {
	p, ok := strings.CutPrefix(src, "file:")
	if !ok || p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, kms.CredentialsDir) {
		return src
	}
	if abs, err := filepath.Abs(p); err == nil {
		return "file:" + abs
	}
	return src
}

// keyFlags choose an authority's key: an existing one (--key) or a new one
// generated beside the root key (--generate, --key-type).
type keyFlags struct {
	key      string
	generate bool
	keyType  string
	kt       kms.KeyType // parsed by check
}

func (k *keyFlags) register(f *flags, generateHelp string) {
	f.StringVar(&k.key, "key", "", "existing key `URI` (pkcs11:token=T;object=O or file:PATH)")
	f.BoolVar(&k.generate, "generate", false, generateHelp)
	f.StringVar(&k.keyType, "key-type", "ecdsa-p256", "`TYPE` of a generated key")
}

// check refuses anything but exactly one of --key and --generate, and a
// --key-type that is no key type, before any home is opened.
func (k *keyFlags) check() error {
	if (k.key == "") == !k.generate {
		return badUsage("give exactly one of --key URI and --generate")
	}
	if k.generate {
		var err error
		if k.kt, err = kms.ParseKeyType(k.keyType); err != nil {
			return err
		}
	}
	return nil
}

// uri is --key, or the URI of a key it generates beside the root key under
// the name that name gives (called only then).
func (k *keyFlags) uri(ctx context.Context, h *home.Home, name func() (string, error)) (string, error) {
	if !k.generate {
		return h.AdoptKeyURI(ctx, k.key)
	}
	n, err := name()
	if err != nil {
		return "", err
	}
	return h.GenerateKeyBesideRoot(ctx, n, k.kt, "cli")
}

// openHomeToRead opens the home named by f's flags for a command that
// only reads: it works on a read-only home.
func openHomeToRead(e *env, f *flags) (*home.Home, error) {
	return home.OpenReadOnly(e.ctx, f.homeDir())
}

// openHome opens the home named by f's flags.
func openHome(e *env, f *flags, u home.Unlock) (*home.Home, error) {
	h, err := home.Open(e.ctx, f.homeDir(), u)
	if err == nil {
		for _, n := range h.Notices {
			fmt.Fprintf(e.stderr, "signet: %s\n", n)
		}
	}
	return h, err
}

// listFlag collects a repeatable flag; each value may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
