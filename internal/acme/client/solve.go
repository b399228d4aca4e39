package client

import (
	"context"
	"crypto/tls"
	"encoding/base64"
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

	"signet/internal/errs"
	"signet/internal/kms"
)

// Challenges says how to answer challenges: exactly one of the ways.
type Challenges struct {
	HTTP01  string `toml:"http_01,omitempty" comment:"answer http-01 with standalone:PORT"`
	Webroot string `toml:"webroot,omitempty" comment:"answer http-01 by writing files under DIR/.well-known/acme-challenge"`
	TLSALPN int    `toml:"tls_alpn_01,omitempty" comment:"answer tls-alpn-01 on PORT"`
	DNS01   string `toml:"dns_01,omitempty" comment:"answer dns-01 with exec:CMD (run as CMD present|cleanup FQDN VALUE) or rfc2136"`
	RFC2136 `toml:",inline"`
}

// RFC2136 configures dns-01 through DNS UPDATE (RFC 2136) signed with
// TSIG, as BIND, Knot and PowerDNS accept.
type RFC2136 struct {
	Server    string `toml:"dns_server,omitempty" comment:"with dns_01 = rfc2136: the DNS server HOST:PORT taking the updates"`
	Zone      string `toml:"dns_zone,omitempty"`
	KeyName   string `toml:"tsig_name,omitempty"`
	Algorithm string `toml:"tsig_algorithm,omitempty" comment:"hmac-sha256 (default), hmac-sha384 or hmac-sha512"`
	SecretSrc string `toml:"tsig_secret,omitempty" comment:"TSIG secret (base64) source: env:VAR or file:PATH"`
}

// Solver answers one kind of challenge.
type Solver interface {
	Kind() string
	present(ctx context.Context, cl *acme.Client, domain string, ch *acme.Challenge) (cleanup func(), err error)
}

// Solver checks c and returns its solver; an rfc2136 one reads its secret.
func (c Challenges) Solver() (Solver, error) {
	if countSet(c.HTTP01, c.Webroot, boolStr(c.TLSALPN != 0), c.DNS01) != 1 {
		return nil, errs.New(errs.Malformed, "give one way to answer challenges: --http-01 standalone:PORT, --webroot DIR, --tls-alpn-01 PORT or --dns-01 exec:CMD|rfc2136")
	}
	switch {
	case c.HTTP01 != "":
		port, ok := strings.CutPrefix(c.HTTP01, "standalone:")
		if !ok || port == "" {
			return nil, errs.New(errs.Malformed, "--http-01 takes standalone:PORT")
		}
		return httpSolver{addr: ":" + port}, nil
	case c.Webroot != "":
		return httpSolver{webroot: c.Webroot}, nil
	case c.TLSALPN != 0:
		if c.TLSALPN < 1 || c.TLSALPN > 65535 {
			return nil, errs.New(errs.Malformed, "--tls-alpn-01 takes a port (1-65535)")
		}
		return alpnSolver{addr: fmt.Sprintf(":%d", c.TLSALPN)}, nil
	case c.DNS01 == "rfc2136":
		return c.RFC2136.check()
	default:
		cmd, ok := strings.CutPrefix(c.DNS01, "exec:")
		if !ok || cmd == "" {
			return nil, errs.New(errs.Malformed, "--dns-01 takes exec:CMD or rfc2136")
		}
		return dnsExecSolver{cmd: cmd}, nil
	}
}

func countSet(v ...string) int {
	n := 0
	for _, s := range v {
		if s != "" {
			n++
		}
	}
	return n
}

func boolStr(b bool) string {
	if b {
		return "set"
	}
	return ""
}

// solve answers the one challenge of the authorization the solver can, and
// waits for the authorization to be valid.
func (c *Client) solve(ctx context.Context, url string, s Solver) error {
	z, err := c.acme.GetAuthorization(ctx, url)
	if err != nil {
		return Err(err, "reading an authorization")
	}
	if z.Status == acme.StatusValid {
		return nil
	}
	var ch *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == s.Kind() {
			ch = c
		}
	}
	if ch == nil {
		return errs.New(errs.Rejected, "the server offers no %s challenge for %s; choose another challenge flag", s.Kind(), z.Identifier.Value)
	}
	cleanup, err := s.present(ctx, c.acme, z.Identifier.Value, ch)
	if err != nil {
		return err
	}
	defer cleanup()
	if _, err := c.acme.Accept(ctx, ch); err != nil {
		return Err(err, "accepting the "+s.Kind()+" challenge for "+z.Identifier.Value)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := c.acme.WaitAuthorization(wctx, z.URI); err != nil {
		return Err(err, "validating "+z.Identifier.Value)
	}
	return nil
}

type httpSolver struct{ addr, webroot string }

func (httpSolver) Kind() string { return "http-01" }

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

func (alpnSolver) Kind() string { return "tls-alpn-01" }

func (s alpnSolver) present(_ context.Context, cl *acme.Client, domain string, ch *acme.Challenge) (func(), error) {
	cert, err := cl.TLSALPN01ChallengeCert(ch.Token, domain)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "making the tls-alpn-01 certificate")
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{acme.ALPNProto}, MinVersion: tls.VersionTLS12}
	return serve(s.addr, http.NotFoundHandler(), tc)
}

type dnsExecSolver struct{ cmd string }

func (dnsExecSolver) Kind() string { return "dns-01" }

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

// rfc2136Solver is an RFC2136 configuration with its secret read.
type rfc2136Solver struct {
	RFC2136
	secret string // base64
}

func (u RFC2136) check() (Solver, error) {
	if u.Server == "" || u.Zone == "" || u.KeyName == "" || u.SecretSrc == "" {
		return nil, errs.New(errs.Malformed, "--dns-01 rfc2136 needs --dns-server HOST:PORT, --dns-zone ZONE, --tsig-name NAME and --tsig-secret SOURCE")
	}
	if u.Algorithm == "" {
		u.Algorithm = "hmac-sha256"
	}
	alg := dns.Fqdn(strings.ToLower(u.Algorithm))
	switch alg {
	case dns.HmacSHA256, dns.HmacSHA384, dns.HmacSHA512:
	default:
		return nil, errs.New(errs.Malformed, "--tsig-algorithm %q is not one of hmac-sha256, hmac-sha384, hmac-sha512", u.Algorithm)
	}
	u.Algorithm = alg
	src, err := kms.ParseSource(u.SecretSrc)
	if err != nil {
		return nil, err
	}
	raw, err := src.Read("TSIG secret")
	if err != nil {
		return nil, err
	}
	s := rfc2136Solver{RFC2136: u, secret: strings.TrimSpace(string(raw))}
	if _, err := base64.StdEncoding.DecodeString(s.secret); err != nil {
		return nil, errs.New(errs.Malformed, "the TSIG secret from %s is not base64; give the key's secret as the DNS server shows it", u.SecretSrc)
	}
	return s, nil
}

func (rfc2136Solver) Kind() string { return "dns-01" }

func (u rfc2136Solver) update(rr dns.RR, insert bool) error {
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(u.Zone))
	if insert {
		m.Insert([]dns.RR{rr})
	} else {
		m.Remove([]dns.RR{rr})
	}
	keyName := dns.Fqdn(u.KeyName)
	m.SetTsig(keyName, u.Algorithm, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 10 * time.Second, TsigSecret: map[string]string{keyName: u.secret}}
	r, _, err := c.Exchange(m, u.Server)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "DNS UPDATE to %s", u.Server)
	}
	if r.Rcode != dns.RcodeSuccess {
		return errs.New(errs.Rejected, "DNS UPDATE of zone %s at %s refused: %s; check the zone and the TSIG key", u.Zone, u.Server, dns.RcodeToString[r.Rcode])
	}
	return nil
}

func (u rfc2136Solver) present(_ context.Context, cl *acme.Client, domain string, ch *acme.Challenge) (func(), error) {
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
