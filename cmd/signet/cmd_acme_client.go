package main

import (
	"cmp"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/acme"

	"signet/internal/acme/client"
	"signet/internal/errs"
	"signet/internal/kms"
)

// acmeClientFlags are the flags every client command shares: the server,
// its trust, the account key and the client's configuration file. No
// signet home is needed.
type acmeClientFlags struct {
	server, caBundle, accountKey string
	keyType, config              string
	unlock                       unlockFlags
	cfg                          *client.Config
}

func (c *acmeClientFlags) register(f *flags) {
	f.StringVar(&c.config, "config", "", "client configuration `FILE` (TOML): server, account_key, [tokens] with module and PIN source per token label")
	f.StringVar(&c.server, "server", "", "ACME directory `URL` of any RFC 8555 server")
	f.StringVar(&c.caBundle, "ca-bundle", "", "`PEM` file of the roots the server's HTTPS certificate chains to (default: the system's)")
	f.StringVar(&c.accountKey, "account-key", "", "account key `URI`: pkcs11:token=T;object=O (signs on the token) or file:PATH (encrypted; generated if missing; default: one per server, see README)")
	f.StringVar(&c.keyType, "key-type", "", "`TYPE` of keys generated here (default ecdsa-p256)")
	c.unlock.register(f)
}

// clientDataDir is where the client keeps its default account keys:
// $XDG_DATA_HOME/signet-client, else ~/.local/share/signet-client.
func clientDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "signet-client")
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".local", "share", "signet-client")
	}
	return "signet-client"
}

// open reads --config, then connects to the server with the account key;
// keys signs with the token for pkcs11: URIs, so no private key is ever
// read by this process.
func (c *acmeClientFlags) open(e *env) (*client.Client, client.Keys, error) {
	c.cfg = &client.Config{}
	if c.config != "" {
		cfg, err := client.LoadConfig(c.config)
		if err != nil {
			return nil, client.Keys{}, err
		}
		c.cfg = cfg
	}
	c.server = cmp.Or(c.server, c.cfg.Server)
	c.caBundle = cmp.Or(absPath(c.caBundle), c.cfg.Path(c.cfg.CABundle))
	c.accountKey = cmp.Or(c.accountKey, c.cfg.KeyURI(c.cfg.AccountKey))
	if c.server == "" {
		return nil, client.Keys{}, badUsage("--server DIRECTORY_URL is required (or server in --config)")
	}
	if c.accountKey == "" {
		c.accountKey = client.DefaultAccountKey(clientDataDir(), c.server)
	}
	keys, err := c.keys()
	if err != nil {
		return nil, keys, err
	}
	signer, err := keys.OpenOrGenerate(e.ctx, c.accountKey, "--account-key")
	if err != nil {
		keys.Close()
		return nil, keys, err
	}
	hc, err := client.HTTPClient(c.caBundle)
	if err != nil {
		keys.Close()
		return nil, keys, err
	}
	return client.New(c.server, hc, signer, "signet/"+version), keys, nil
}

func absPath(p string) string {
	if p == "" {
		return ""
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func (c *acmeClientFlags) keys() (client.Keys, error) {
	kt, err := kms.ParseKeyType(cmp.Or(c.keyType, c.cfg.KeyType, string(kms.ECDSAP256)))
	if err != nil {
		return client.Keys{}, err
	}
	o, err := c.cfg.KeyOptions(c.unlock.module, absSource(c.unlock.pin), absSource(c.unlock.passphrase))
	if err != nil {
		return client.Keys{}, err
	}
	return client.Keys{Manager: kms.NewManager(o), Type: kt}, nil
}

// register finds or creates the account of the client's key.
func (c *acmeClientFlags) account(e *env, cl *client.Client, eabKID, eabHMAC string) error {
	eabKID = cmp.Or(eabKID, c.cfg.EABKID)
	if eabKID == "" {
		return cl.Register(e.ctx, nil)
	}
	eab, err := client.EAB(eabKID, cmp.Or(absSource(eabHMAC), c.cfg.Source(c.cfg.EABHMAC)))
	if err != nil {
		return err
	}
	return cl.Register(e.ctx, eab)
}

func cmdACMECertonly(e *env, args []string) error {
	f := newFlags(e, "acme certonly")
	var c acmeClientFlags
	c.register(f)
	var dnsNames, ips listFlag
	f.Var(&dnsNames, "dns", "DNS `NAME` to certify (repeatable)")
	f.Var(&ips, "ip", "IP `ADDRESS` to certify (repeatable)")
	keyURI := f.String("key", "", "certificate key `URI`: pkcs11:... or file:PATH (encrypted; generated if missing)")
	keyOnToken := f.String("key-on-token", "", "generate the certificate key on a token at `pkcs11:token=T;object=O`")
	clearKey := f.Bool("clear-key", false, "generate the certificate key unencrypted as OUT/privkey.pem")
	var ch client.Challenges
	f.StringVar(&ch.HTTP01, "http-01", "", "answer http-01 with `standalone:PORT`")
	f.StringVar(&ch.Webroot, "webroot", "", "answer http-01 by writing files under `DIR`/.well-known/acme-challenge")
	f.IntVar(&ch.TLSALPN, "tls-alpn-01", 0, "answer tls-alpn-01 on `PORT`")
	f.StringVar(&ch.DNS01, "dns-01", "", "answer dns-01 with `exec:CMD` (run as CMD present|cleanup FQDN VALUE) or rfc2136")
	f.StringVar(&ch.Server, "dns-server", "", "with --dns-01 rfc2136: the DNS server `HOST:PORT` taking the updates")
	f.StringVar(&ch.Zone, "dns-zone", "", "with --dns-01 rfc2136: the `ZONE` to update")
	f.StringVar(&ch.KeyName, "tsig-name", "", "with --dns-01 rfc2136: TSIG key `NAME`")
	f.StringVar(&ch.Algorithm, "tsig-algorithm", "hmac-sha256", "with --dns-01 rfc2136: TSIG `ALGORITHM` (hmac-sha256, hmac-sha384, hmac-sha512)")
	f.StringVar(&ch.SecretSrc, "tsig-secret", "", "with --dns-01 rfc2136: TSIG secret (base64) `SOURCE`: env:VAR, file:PATH or prompt")
	eabKID := f.String("eab-kid", "", "external account binding key `ID`")
	eabHMAC := f.String("eab-hmac", "", "external account binding HMAC key `SOURCE`: env:VAR, file:PATH or prompt")
	prof := f.String("profile", "", "issuance profile `NAME` the server advertises (e.g. shortlived)")
	out := f.String("out", "", "`DIR` to write cert.pem, chain.pem and fullchain.pem in")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if len(dnsNames) == 0 && len(ips) == 0 {
		return badUsage("give the names to certify: --dns NAME or --ip ADDRESS")
	}
	if *out == "" {
		return badUsage("--out DIR is required")
	}
	if n := countSet(*keyURI, *keyOnToken, boolStr(*clearKey)); n > 1 {
		return badUsage("give one of --key URI, --key-on-token URI and --clear-key")
	}
	ch.SecretSrc = absSource(ch.SecretSrc)
	solver, err := ch.Solver()
	if err != nil {
		return err
	}
	var ipAddrs []net.IP
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return badUsage("--ip %q is not an IP address", s)
		}
		ipAddrs = append(ipAddrs, ip)
	}
	cl, keys, err := c.open(e)
	if err != nil {
		return err
	}
	defer keys.Close()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return errs.Wrap(errs.Unavailable, err, "--out %s", *out)
	}
	var certKey crypto.Signer
	switch {
	case *keyURI != "":
		certKey, err = keys.OpenOrGenerate(e.ctx, *keyURI, "--key")
	case *keyOnToken != "":
		certKey, err = keys.OnToken(e.ctx, *keyOnToken)
	case *clearKey:
		var data []byte
		if certKey, data, err = keys.NewClearKey(); err == nil {
			err = client.WriteFile(filepath.Join(*out, "privkey.pem"), 0o600, data)
		}
	default:
		certKey, err = keys.OpenOrGenerate(e.ctx, "file:"+filepath.Join(*out, "privkey.key"), "--key")
	}
	if err != nil {
		return err
	}
	if err := c.account(e, cl, *eabKID, *eabHMAC); err != nil {
		return err
	}
	ders, err := cl.Obtain(e.ctx, client.Order{DNSNames: dnsNames, IPs: ipAddrs, Key: certKey, Solver: solver, Profile: *prof})
	if err != nil {
		return err
	}
	if err := client.WriteChain(*out, ders); err != nil {
		return err
	}
	leaf, _ := x509.ParseCertificate(ders[0])
	fmt.Fprintf(e.stdout, "wrote %s (serial %x, expires %s)\n", filepath.Join(*out, "cert.pem"), leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func cmdACMERevoke(e *env, args []string) error {
	f := newFlags(e, "acme revoke")
	var c acmeClientFlags
	c.register(f)
	reason := f.Int("reason", 0, "RFC 5280 reason `CODE` (0 unspecified, 1 keyCompromise, 4 superseded, 5 cessationOfOperation)")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return badUsage("give the certificate file: signet acme revoke CERT")
	}
	data, err := os.ReadFile(rest[0])
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "reading %s", rest[0])
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return errs.New(errs.Malformed, "%s holds no PEM certificate; give cert.pem", rest[0])
	}
	cl, keys, err := c.open(e)
	if err != nil {
		return err
	}
	defer keys.Close()
	if err := cl.Revoke(e.ctx, block.Bytes, acme.CRLReasonCode(*reason)); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "revoked %s\n", rest[0])
	return nil
}

func cmdACMEAccountRollover(e *env, args []string) error {
	f := newFlags(e, "acme account rollover")
	var c acmeClientFlags
	c.register(f)
	newKey := f.String("new-account-key", "", "the account's new key `URI` (pkcs11:... or file:PATH, generated if missing)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *newKey == "" {
		return badUsage("--new-account-key URI is required")
	}
	cl, keys, err := c.open(e)
	if err != nil {
		return err
	}
	defer keys.Close()
	signer, err := keys.OpenOrGenerate(e.ctx, *newKey, "--new-account-key")
	if err != nil {
		return err
	}
	if err := cl.Rollover(e.ctx, signer); err != nil {
		return err
	}
	acct, _ := cl.Account(e.ctx)
	fmt.Fprintf(e.stdout, "account %s now uses %s\n", acct, *newKey)
	return nil
}

func cmdACMEAccountDeactivate(e *env, args []string) error {
	f := newFlags(e, "acme account deactivate")
	var c acmeClientFlags
	c.register(f)
	if err := f.parseNone(args); err != nil {
		return err
	}
	cl, keys, err := c.open(e)
	if err != nil {
		return err
	}
	defer keys.Close()
	acct, err := cl.Account(e.ctx)
	if err != nil {
		return err
	}
	if err := cl.Deactivate(e.ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "account %s deactivated\n", acct)
	return nil
}

func boolStr(b bool) string {
	if b {
		return "set"
	}
	return ""
}
