package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/crypto/acme"

	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/kms"
)

// acmeClientFlags are the flags every client command shares: the server,
// its trust and the account key. No signet home is needed.
type acmeClientFlags struct {
	server, caBundle, accountKey string
	keyType                      string
	unlock                       unlockFlags
}

func (c *acmeClientFlags) register(f *flags) {
	f.StringVar(&c.server, "server", "", "ACME directory `URL` of any RFC 8555 server")
	f.StringVar(&c.caBundle, "ca-bundle", "", "`PEM` file of the roots the server's HTTPS certificate chains to (default: the system's)")
	f.StringVar(&c.accountKey, "account-key", "", "account key `URI`: pkcs11:token=T;object=O (signs on the token) or file:PATH (encrypted; generated if missing)")
	f.StringVar(&c.keyType, "key-type", string(kms.ECDSAP256), "`TYPE` of keys generated here")
	c.unlock.register(f)
}

// open connects to the server with the account key; keys signs with the
// token for pkcs11: URIs, so no private key is ever read by this process.
func (c *acmeClientFlags) open(e *env) (*acme.Client, *kms.Manager, error) {
	if c.server == "" || c.accountKey == "" {
		return nil, nil, badUsage("--server DIRECTORY_URL and --account-key URI are required")
	}
	keys, err := c.keys()
	if err != nil {
		return nil, nil, err
	}
	signer, err := c.openOrGenerate(e, keys, c.accountKey, "--account-key")
	if err != nil {
		keys.Close()
		return nil, nil, err
	}
	hc := &http.Client{Timeout: time.Minute}
	if c.caBundle != "" {
		data, err := os.ReadFile(c.caBundle)
		if err != nil {
			keys.Close()
			return nil, nil, errs.Wrap(errs.Unavailable, err, "reading --ca-bundle")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			keys.Close()
			return nil, nil, errs.New(errs.Malformed, "--ca-bundle %s holds no PEM certificate; give the server's root certificate", c.caBundle)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &acme.Client{Key: signer, DirectoryURL: c.server, HTTPClient: hc, UserAgent: "signet/" + version}, keys, nil
}

func (c *acmeClientFlags) keys() (*kms.Manager, error) {
	var pin, pass kms.Source
	var err error
	if c.unlock.pin != "" {
		if pin, err = kms.ParseSource(absSource(c.unlock.pin)); err != nil {
			return nil, err
		}
	}
	if c.unlock.passphrase != "" {
		if pass, err = kms.ParseSource(absSource(c.unlock.passphrase)); err != nil {
			return nil, err
		}
	}
	return kms.NewManager(kms.Options{Module: c.unlock.module, PIN: pin, Passphrase: pass}), nil
}

// openOrGenerate opens the key at uri, generating a missing file: key.
func (c *acmeClientFlags) openOrGenerate(e *env, keys *kms.Manager, uri, flag string) (crypto.Signer, error) {
	if p, ok := strings.CutPrefix(uri, "file:"); ok {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			kt, err := kms.ParseKeyType(c.keyType)
			if err != nil {
				return nil, err
			}
			return keys.Generate(e.ctx, uri, kt)
		}
	} else if !strings.HasPrefix(uri, "pkcs11:") {
		return nil, badUsage("%s must be a pkcs11: or file: URI", flag)
	}
	return keys.Signer(e.ctx, uri)
}

// register finds or creates the account of the client's key.
func (c *acmeClientFlags) account(e *env, cl *acme.Client, eabKID, eabHMAC string) error {
	acct := &acme.Account{}
	if eabKID != "" {
		src, err := kms.ParseSource(absSource(eabHMAC))
		if err != nil {
			return err
		}
		raw, err := src.Read("EAB HMAC key")
		if err != nil {
			return err
		}
		key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(string(raw)), "="))
		if err != nil {
			return errs.New(errs.Malformed, "the EAB HMAC key from %s is not base64url; give the key the server printed", eabHMAC)
		}
		acct.ExternalAccountBinding = &acme.ExternalAccountBinding{KID: eabKID, Key: key}
	}
	_, err := cl.Register(e.ctx, acct, acme.AcceptTOS)
	if errors.Is(err, acme.ErrAccountAlreadyExists) {
		return nil
	}
	return acmeErr(err, "registering the account")
}

func acmeErr(err error, what string) error {
	if err == nil {
		return nil
	}
	var ae *acme.Error
	if errors.As(err, &ae) {
		return errs.New(errs.Rejected, "%s: the ACME server says %s (%s)", what, ae.Detail, ae.ProblemType)
	}
	return errs.Wrap(errs.Unavailable, err, "%s", what)
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
	http01 := f.String("http-01", "", "answer http-01 with `standalone:PORT`")
	webroot := f.String("webroot", "", "answer http-01 by writing files under `DIR`/.well-known/acme-challenge")
	tlsALPN := f.Int("tls-alpn-01", 0, "answer tls-alpn-01 on `PORT`")
	dns01 := f.String("dns-01", "", "answer dns-01 with `exec:CMD` (run as CMD present|cleanup FQDN VALUE) or rfc2136")
	var upd rfc2136
	f.StringVar(&upd.server, "dns-server", "", "with --dns-01 rfc2136: the DNS server `HOST:PORT` taking the updates")
	f.StringVar(&upd.zone, "dns-zone", "", "with --dns-01 rfc2136: the `ZONE` to update")
	f.StringVar(&upd.keyName, "tsig-name", "", "with --dns-01 rfc2136: TSIG key `NAME`")
	f.StringVar(&upd.algorithm, "tsig-algorithm", "hmac-sha256", "with --dns-01 rfc2136: TSIG `ALGORITHM` (hmac-sha256, hmac-sha384, hmac-sha512)")
	f.StringVar(&upd.secretSrc, "tsig-secret", "", "with --dns-01 rfc2136: TSIG secret (base64) `SOURCE`: env:VAR, file:PATH or prompt")
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
	solver, err := newSolver(*http01, *webroot, *tlsALPN, *dns01, upd)
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
	certKey, err := c.certificateKey(e, keys, *keyURI, *keyOnToken, *clearKey, *out)
	if err != nil {
		return err
	}
	if err := c.account(e, cl, *eabKID, *eabHMAC); err != nil {
		return err
	}
	ids := acme.DomainIDs(dnsNames...)
	ids = append(ids, acme.IPIDs(ips...)...)
	var opts []acme.OrderOption
	if *prof != "" {
		opts = append(opts, acme.WithOrderIssuanceProfile(acme.ProfileName(*prof)))
	}
	order, err := cl.AuthorizeOrder(e.ctx, ids, opts...)
	if err != nil {
		return acmeErr(err, "creating the order")
	}
	for _, u := range order.AuthzURLs {
		if err := solve(e.ctx, cl, u, solver); err != nil {
			return err
		}
	}
	if order, err = cl.WaitOrder(e.ctx, order.URI); err != nil {
		return acmeErr(err, "waiting for the order")
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: dnsNames, IPAddresses: ipAddrs}, certKey)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "signing the certificate request with the certificate key")
	}
	ders, _, err := cl.CreateOrderCert(e.ctx, order.FinalizeURL, csr, true)
	if err != nil {
		return acmeErr(err, "finalizing the order")
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil || !samePublic(leaf.PublicKey, certKey.Public()) {
		return errs.New(errs.Rejected, "the server returned a certificate not for the certificate key; nothing written")
	}
	for _, w := range []struct {
		name string
		ders [][]byte
	}{{"cert.pem", ders[:1]}, {"chain.pem", ders[1:]}, {"fullchain.pem", ders}} {
		data := pemCerts(w.ders...)
		if err := config.ReplaceFile(filepath.Join(*out, w.name), 0o644, func(wr io.Writer) error {
			_, err := io.WriteString(wr, data)
			return err
		}); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "wrote %s (serial %x, expires %s)\n", filepath.Join(*out, "cert.pem"), leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func samePublic(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// certificateKey opens or makes the certificate's key: the given URI, a new
// key on a token, a clear OUT/privkey.pem, or an encrypted OUT/privkey.key.
func (c *acmeClientFlags) certificateKey(e *env, keys *kms.Manager, uri, onToken string, inClear bool, out string) (crypto.Signer, error) {
	kt, err := kms.ParseKeyType(c.keyType)
	if err != nil {
		return nil, err
	}
	switch {
	case uri != "":
		return c.openOrGenerate(e, keys, uri, "--key")
	case onToken != "":
		if !strings.HasPrefix(onToken, "pkcs11:") {
			return nil, badUsage("--key-on-token must be a pkcs11: URI")
		}
		return keys.Generate(e.ctx, onToken, kt)
	case inClear:
		priv, err := kms.NewSoftwareKey(kt)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "encoding the new key")
		}
		err = config.ReplaceFile(filepath.Join(out, "privkey.pem"), 0o600, func(w io.Writer) error {
			return pem.Encode(w, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		})
		return priv, err
	default:
		return keys.Generate(e.ctx, "file:"+filepath.Join(out, "privkey.key"), kt)
	}
}

// solver answers one kind of challenge.
type solver interface {
	kind() string
	present(ctx context.Context, cl *acme.Client, domain string, ch *acme.Challenge) (cleanup func(), err error)
}

func newSolver(http01, webroot string, tlsPort int, dns01 string, upd rfc2136) (solver, error) {
	if countSet(http01, webroot, boolStr(tlsPort != 0), dns01) != 1 {
		return nil, badUsage("give one way to answer challenges: --http-01 standalone:PORT, --webroot DIR, --tls-alpn-01 PORT or --dns-01 exec:CMD|rfc2136")
	}
	switch {
	case http01 != "":
		port, ok := strings.CutPrefix(http01, "standalone:")
		if !ok || port == "" {
			return nil, badUsage("--http-01 takes standalone:PORT")
		}
		return httpSolver{addr: ":" + port}, nil
	case webroot != "":
		return httpSolver{webroot: webroot}, nil
	case tlsPort != 0:
		if tlsPort < 1 || tlsPort > 65535 {
			return nil, badUsage("--tls-alpn-01 takes a port (1-65535)")
		}
		return alpnSolver{addr: fmt.Sprintf(":%d", tlsPort)}, nil
	case dns01 == "rfc2136":
		return upd.check()
	default:
		cmd, ok := strings.CutPrefix(dns01, "exec:")
		if !ok || cmd == "" {
			return nil, badUsage("--dns-01 takes exec:CMD or rfc2136")
		}
		return dnsExecSolver{cmd: cmd}, nil
	}
}

// solve answers the one challenge of the authorization the solver can, and
// waits for the authorization to be valid.
func solve(ctx context.Context, cl *acme.Client, url string, s solver) error {
	z, err := cl.GetAuthorization(ctx, url)
	if err != nil {
		return acmeErr(err, "reading an authorization")
	}
	if z.Status == acme.StatusValid {
		return nil
	}
	var ch *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == s.kind() {
			ch = c
		}
	}
	if ch == nil {
		return errs.New(errs.Rejected, "the server offers no %s challenge for %s; choose another challenge flag", s.kind(), z.Identifier.Value)
	}
	cleanup, err := s.present(ctx, cl, z.Identifier.Value, ch)
	if err != nil {
		return err
	}
	defer cleanup()
	if _, err := cl.Accept(ctx, ch); err != nil {
		return acmeErr(err, "accepting the "+s.kind()+" challenge for "+z.Identifier.Value)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := cl.WaitAuthorization(wctx, z.URI); err != nil {
		return acmeErr(err, "validating "+z.Identifier.Value)
	}
	return nil
}

type httpSolver struct{ addr, webroot string }

func (httpSolver) kind() string { return "http-01" }

func (s httpSolver) present(_ context.Context, cl *acme.Client, _ string, ch *acme.Challenge) (func(), error) {
	body, err := cl.HTTP01ChallengeResponse(ch.Token)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "computing the http-01 response")
	}
	path := cl.HTTP01ChallengePath(ch.Token)
	if s.webroot != "" {
		file := filepath.Join(s.webroot, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "--webroot")
		}
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "--webroot")
		}
		return func() { os.Remove(file) }, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) })
	return serve(s.addr, mux, nil)
}

func serve(addr string, h http.Handler, tc *tls.Config) (func(), error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "listening on %s for the challenge", addr)
	}
	if tc != nil {
		l = tls.NewListener(l, tc)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return func() { srv.Close() }, nil
}

type alpnSolver struct{ addr string }

func (alpnSolver) kind() string { return "tls-alpn-01" }

func (s alpnSolver) present(_ context.Context, cl *acme.Client, domain string, ch *acme.Challenge) (func(), error) {
	cert, err := cl.TLSALPN01ChallengeCert(ch.Token, domain)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "making the tls-alpn-01 certificate")
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{acme.ALPNProto}, MinVersion: tls.VersionTLS12}
	return serve(s.addr, http.NotFoundHandler(), tc)
}

type dnsExecSolver struct{ cmd string }

func (dnsExecSolver) kind() string { return "dns-01" }

func (s dnsExecSolver) present(ctx context.Context, cl *acme.Client, domain string, ch *acme.Challenge) (func(), error) {
	value, err := cl.DNS01ChallengeRecord(ch.Token)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "computing the dns-01 record")
	}
	fqdn := "_acme-challenge." + strings.TrimPrefix(domain, "*.") + "."
	run := func(action string) error {
		cmd := exec.CommandContext(ctx, s.cmd, action, fqdn, value)
		if out, err := cmd.CombinedOutput(); err != nil {
			return errs.New(errs.Unavailable, "--dns-01 exec:%s %s failed (%v): %s", s.cmd, action, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run("present"); err != nil {
		return nil, err
	}
	return func() { run("cleanup") }, nil
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
	if err := cl.RevokeCert(e.ctx, nil, block.Bytes, acme.CRLReasonCode(*reason)); err != nil {
		return acmeErr(err, "revoking "+rest[0])
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
	signer, err := c.openOrGenerate(e, keys, *newKey, "--new-account-key")
	if err != nil {
		return err
	}
	if _, err := cl.GetReg(e.ctx, ""); err != nil {
		return acmeErr(err, "finding the account of --account-key")
	}
	if err := cl.AccountKeyRollover(e.ctx, signer); err != nil {
		return acmeErr(err, "rolling the account key over")
	}
	fmt.Fprintf(e.stdout, "account %s now uses %s\n", cl.KID, *newKey)
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
	if _, err := cl.GetReg(e.ctx, ""); err != nil {
		return acmeErr(err, "finding the account of --account-key")
	}
	if err := cl.DeactivateReg(e.ctx); err != nil {
		return acmeErr(err, "deactivating the account")
	}
	fmt.Fprintf(e.stdout, "account %s deactivated\n", cl.KID)
	return nil
}

func boolStr(b bool) string {
	if b {
		return "set"
	}
	return ""
}

// rfc2136 answers dns-01 with DNS UPDATE (RFC 2136) signed with TSIG, as
// BIND, Knot and PowerDNS accept.
type rfc2136 struct {
	server, zone, keyName, algorithm, secretSrc string
	secret                                      string // base64, read by check
}

func (u rfc2136) check() (solver, error) {
	if u.server == "" || u.zone == "" || u.keyName == "" || u.secretSrc == "" {
		return nil, badUsage("--dns-01 rfc2136 needs --dns-server HOST:PORT, --dns-zone ZONE, --tsig-name NAME and --tsig-secret SOURCE")
	}
	alg := dns.Fqdn(strings.ToLower(u.algorithm))
	switch alg {
	case dns.HmacSHA256, dns.HmacSHA384, dns.HmacSHA512:
	default:
		return nil, badUsage("--tsig-algorithm %q is not one of hmac-sha256, hmac-sha384, hmac-sha512", u.algorithm)
	}
	u.algorithm = alg
	src, err := kms.ParseSource(absSource(u.secretSrc))
	if err != nil {
		return nil, err
	}
	raw, err := src.Read("TSIG secret")
	if err != nil {
		return nil, err
	}
	u.secret = strings.TrimSpace(string(raw))
	if _, err := base64.StdEncoding.DecodeString(u.secret); err != nil {
		return nil, errs.New(errs.Malformed, "the TSIG secret from %s is not base64; give the key's secret as the DNS server shows it", u.secretSrc)
	}
	return u, nil
}

func (rfc2136) kind() string { return "dns-01" }

func (u rfc2136) update(rr dns.RR, insert bool) error {
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(u.zone))
	if insert {
		m.Insert([]dns.RR{rr})
	} else {
		m.Remove([]dns.RR{rr})
	}
	keyName := dns.Fqdn(u.keyName)
	m.SetTsig(keyName, u.algorithm, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 10 * time.Second, TsigSecret: map[string]string{keyName: u.secret}}
	r, _, err := c.Exchange(m, u.server)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "DNS UPDATE to %s", u.server)
	}
	if r.Rcode != dns.RcodeSuccess {
		return errs.New(errs.Rejected, "DNS UPDATE of zone %s at %s refused: %s; check the zone and the TSIG key", u.zone, u.server, dns.RcodeToString[r.Rcode])
	}
	return nil
}

func (u rfc2136) present(_ context.Context, cl *acme.Client, domain string, ch *acme.Challenge) (func(), error) {
	value, err := cl.DNS01ChallengeRecord(ch.Token)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "computing the dns-01 record")
	}
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: "_acme-challenge." + dns.Fqdn(strings.TrimPrefix(domain, "*.")), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{value}}
	if err := u.update(rr, true); err != nil {
		return nil, err
	}
	return func() { u.update(rr, false) }, nil
}
