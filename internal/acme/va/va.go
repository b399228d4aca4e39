// Package va owns ACME challenge validation: http-01 (RFC 8555 §8.3),
// dns-01 (§8.4) and tls-alpn-01 (RFC 8737) against dns and ip identifiers,
// with a configurable DNS resolver, bounded timeouts and a cap on how many
// validations run at once. It only looks; it never writes state.
package va

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"signet/internal/acme"
)

// Options configure a VA. Zero values take the production defaults.
type Options struct {
	Resolver      string        // DNS server HOST:PORT; "" uses the system resolver
	HTTPPort      int           // port http-01 connects to (80)
	TLSPort       int           // port tls-alpn-01 connects to (443)
	Timeout       time.Duration // per validation (10s)
	MaxConcurrent int           // validations in flight at once (64)
}

// VA validates challenges.
type VA struct {
	o   Options
	sem chan struct{}
	dns *dns.Client
}

// New returns a VA.
func New(o Options) *VA {
	if o.HTTPPort == 0 {
		o.HTTPPort = 80
	}
	if o.TLSPort == 0 {
		o.TLSPort = 443
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = 64
	}
	return &VA{o: o, sem: make(chan struct{}, o.MaxConcurrent), dns: &dns.Client{Timeout: o.Timeout / 2}}
}

// Failure is a validation that did not succeed, with the ACME problem type
// that says why (connection, dns, tls, incorrectResponse, unauthorized).
type Failure struct {
	Type   acme.ProblemType
	Detail string
}

func (f *Failure) Error() string { return f.Detail }

func fail(t acme.ProblemType, format string, args ...any) *Failure {
	return &Failure{Type: t, Detail: fmt.Sprintf(format, args...)}
}

// Validate checks one challenge of type typ for the identifier, where
// keyAuth is the key authorization (token.thumbprint). It returns nil or a
// *Failure.
func (v *VA) Validate(ctx context.Context, typ string, id acme.Identifier, token, keyAuth string) error {
	ctx, cancel := context.WithTimeout(ctx, v.o.Timeout)
	defer cancel()
	select {
	case v.sem <- struct{}{}:
		defer func() { <-v.sem }()
	case <-ctx.Done():
		return fail(acme.Connection, "the validation queue is full; try again")
	}
	switch typ {
	case acme.HTTP01:
		return v.http01(ctx, id, token, keyAuth)
	case acme.DNS01:
		return v.dns01(ctx, id, keyAuth)
	case acme.TLSALPN01:
		return v.tlsALPN01(ctx, id, keyAuth)
	}
	return fail(acme.Malformed, "unknown challenge type %q", typ)
}

// addresses resolves the identifier to the addresses to connect to.
func (v *VA) addresses(ctx context.Context, id acme.Identifier) ([]netip.Addr, error) {
	if id.Type == "ip" {
		a, err := netip.ParseAddr(id.Value)
		if err != nil {
			return nil, fail(acme.Malformed, "%q is not an IP address", id.Value)
		}
		return []netip.Addr{a}, nil
	}
	if v.o.Resolver == "" {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", id.Value)
		if err != nil || len(addrs) == 0 {
			return nil, fail(acme.DNS, "no address for %s: %v", id.Value, err)
		}
		return addrs, nil
	}
	var out []netip.Addr
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := v.query(ctx, id.Value, qt)
		if err != nil {
			return nil, err
		}
		for _, rr := range rrs {
			switch r := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(r.A.To4()); ok {
					out = append(out, a)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(r.AAAA); ok {
					out = append(out, a)
				}
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, fail(acme.DNS, "no A or AAAA record for %s", id.Value)
}

// query asks the configured resolver, over UDP and then TCP if truncated.
func (v *VA) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	r, _, err := v.dns.ExchangeContext(ctx, m, v.o.Resolver)
	if err == nil && r.Truncated {
		tcp := *v.dns
		tcp.Net = "tcp"
		r, _, err = tcp.ExchangeContext(ctx, m, v.o.Resolver)
	}
	if err != nil {
		return nil, fail(acme.DNS, "DNS query for %s: %v", name, err)
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fail(acme.DNS, "DNS query for %s: %s", name, dns.RcodeToString[r.Rcode])
	}
	return r.Answer, nil
}

// http01 fetches the key authorization over HTTP from the first address
// that answers, following redirects as RFC 8555 §8.3 suggests (see
// redirect for which).
func (v *VA) http01(ctx context.Context, id acme.Identifier, token, keyAuth string) error {
	addrs, err := v.addresses(ctx, id)
	if err != nil {
		return err
	}
	host := id.Value
	if id.Type == "ip" && strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return eachAddr(addrs, func(a netip.Addr) error { return v.fetch(ctx, a, id.Value, host, token, keyAuth) })
}

// eachAddr tries the addresses in turn until one succeeds. It stops at the
// first failure that is not a connection failure: an address that answered
// wrongly decides, one that could not be reached does not.
func eachAddr(addrs []netip.Addr, try func(netip.Addr) error) error {
	var last error
	for _, a := range addrs {
		if last = try(a); last == nil {
			return nil
		}
		if f, ok := last.(*Failure); ok && f.Type != acme.Connection {
			return last
		}
	}
	return last
}

// maxRedirects bounds the redirects one http-01 validation follows.
const maxRedirects = 10

// redirect allows what Let's Encrypt allows: http or https, on the
// standard ports (here mapped to HTTPPort and TLSPort, which tests
// override), to a name rather than an IP address unless it is the
// identifier name itself, at most maxRedirects times.
func redirect(req *http.Request, via []*http.Request, name string) error {
	u := req.URL
	switch {
	case len(via) > maxRedirects:
		return fail(acme.Connection, "more than %d redirects", maxRedirects)
	case u.Scheme != "http" && u.Scheme != "https":
		return fail(acme.Connection, "redirect to %s: only http and https are followed", u.Redacted())
	case u.Hostname() == "":
		return fail(acme.Connection, "redirect to %s: no host", u.Redacted())
	case otherIP(u.Hostname(), name):
		return fail(acme.Connection, "redirect to %s: IP addresses are not followed", u.Redacted())
	case u.Port() != "" && !(u.Scheme == "http" && u.Port() == "80" || u.Scheme == "https" && u.Port() == "443"):
		return fail(acme.Connection, "redirect to %s: only ports 80 (http) and 443 (https) are followed", u.Redacted())
	}
	return nil
}

// otherIP reports whether host is an IP address other than name.
func otherIP(host, name string) bool {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	b, err := netip.ParseAddr(name)
	return err != nil || a != b
}

// elsewhere is the failure of a redirect target on a host other than the
// identifier's: whether that host answers, and what, is not the client's
// to learn through the CA.
func elsewhere(u *neturl.URL) *Failure {
	return fail(acme.IncorrectResponse, "redirect target %s failed", u.Redacted())
}

// fetch asks a for the challenge, as host; a redirect to another host
// goes to that host's first address.
func (v *VA) fetch(ctx context.Context, a netip.Addr, name, host, token, keyAuth string) error {
	dial := func(ctx context.Context, _, addr string) (net.Conn, error) {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		port := v.o.HTTPPort
		if p == "443" {
			port = v.o.TLSPort
		}
		ip := a
		if h != name {
			id := acme.Identifier{Type: "dns", Value: h}
			if _, err := netip.ParseAddr(h); err == nil {
				id.Type = "ip"
			}
			addrs, err := v.addresses(ctx, id)
			if err != nil {
				return nil, err
			}
			ip = addrs[0]
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, uint16(port)).String())
	}
	tr := &http.Transport{
		DialContext: dial,
		// The key authorization in the body is the proof; a redirect to
		// https may well reach a certificate not issued yet.
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  v.o.Timeout,
		MaxResponseHeaderBytes: 8 << 10,
	}
	defer tr.CloseIdleConnections()
	var refused error // a redirect the rules refuse, which the client may know
	c := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		refused = redirect(req, via, name)
		return refused
	}}
	url := "http://" + host + "/.well-known/acme-challenge/" + token
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("User-Agent", "signet-acme-va")
	resp, err := c.Do(req)
	if err != nil {
		var ue *neturl.Error
		if refused == nil && errors.As(err, &ue) {
			if u, perr := neturl.Parse(ue.URL); perr == nil && u.Hostname() != name {
				return elsewhere(u)
			}
		}
		var f *Failure
		if errors.As(err, &f) {
			return f
		}
		return fail(acme.Connection, "fetching %s from %s: %v", url, a, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	got := strings.TrimRight(string(body), " \t\r\n")
	final := resp.Request.URL
	switch {
	case err == nil && resp.StatusCode == http.StatusOK && subtle.ConstantTimeCompare([]byte(got), []byte(keyAuth)) == 1:
		return nil
	case final.Hostname() != name:
		return elsewhere(final)
	}
	if final.String() != url {
		url += " (redirected to " + final.String() + ")"
	}
	switch {
	case err != nil:
		return fail(acme.Connection, "reading the challenge response of %s: %v", url, err)
	case resp.StatusCode != http.StatusOK:
		return fail(acme.Unauthorized, "%s answered %d", url, resp.StatusCode)
	}
	return fail(acme.IncorrectResponse, "the key authorization served for %s is %q, want %q", host, trunc(got), keyAuth)
}

// dns01 looks for the digest of the key authorization in a TXT record.
func (v *VA) dns01(ctx context.Context, id acme.Identifier, keyAuth string) error {
	if id.Type != "dns" {
		return fail(acme.Malformed, "dns-01 validates DNS names only")
	}
	sum := sha256.Sum256([]byte(keyAuth))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	name := "_acme-challenge." + id.Value
	var txts []string
	if v.o.Resolver == "" {
		var err error
		if txts, err = net.DefaultResolver.LookupTXT(ctx, name); err != nil {
			return fail(acme.DNS, "TXT lookup for %s: %v", name, err)
		}
	} else {
		rrs, err := v.query(ctx, name, dns.TypeTXT)
		if err != nil {
			return err
		}
		for _, rr := range rrs {
			if t, ok := rr.(*dns.TXT); ok {
				txts = append(txts, strings.Join(t.Txt, ""))
			}
		}
	}
	for _, t := range txts {
		if subtle.ConstantTimeCompare([]byte(t), []byte(want)) == 1 {
			return nil
		}
	}
	if len(txts) == 0 {
		return fail(acme.Unauthorized, "no TXT record at %s", name)
	}
	return fail(acme.IncorrectResponse, "no TXT record at %s holds %q (found %d others)", name, want, len(txts))
}

// idPeACMEIdentifier is the RFC 8737 certificate extension.
var idPeACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// tlsALPN01 connects with ALPN acme-tls/1 and checks the self-signed
// certificate names the identifier alone and carries the key
// authorization's digest in a critical acmeIdentifier extension.
func (v *VA) tlsALPN01(ctx context.Context, id acme.Identifier, keyAuth string) error {
	addrs, err := v.addresses(ctx, id)
	if err != nil {
		return err
	}
	return eachAddr(addrs, func(a netip.Addr) error { return v.alpnAt(ctx, a, id, keyAuth) })
}

// alpnAt runs tls-alpn-01 against one address of the identifier.
func (v *VA) alpnAt(ctx context.Context, a netip.Addr, id acme.Identifier, keyAuth string) error {
	sni := id.Value
	if id.Type == "ip" {
		sni = reverseName(a)
	}
	target := netip.AddrPortFrom(a, uint16(v.o.TLSPort)).String()
	d := tls.Dialer{Config: &tls.Config{
		ServerName: sni, NextProtos: []string{"acme-tls/1"}, MinVersion: tls.VersionTLS12,
		InsecureSkipVerify: true, // the certificate is self-signed by design; checked below
	}}
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return fail(acme.Connection, "TLS connection to %s: %v", target, err)
	}
	defer conn.Close()
	cs := conn.(*tls.Conn).ConnectionState()
	if cs.NegotiatedProtocol != "acme-tls/1" {
		return fail(acme.TLS, "%s did not negotiate the acme-tls/1 protocol", target)
	}
	if len(cs.PeerCertificates) == 0 {
		return fail(acme.TLS, "%s sent no certificate", target)
	}
	cert := cs.PeerCertificates[0]
	if !namesOnly(cert, id) {
		return fail(acme.Unauthorized, "the tls-alpn-01 certificate from %s does not name exactly %s", target, id.Value)
	}
	sum := sha256.Sum256([]byte(keyAuth))
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(idPeACMEIdentifier) {
			continue
		}
		if !ext.Critical {
			return fail(acme.Unauthorized, "the acmeIdentifier extension from %s is not critical", target)
		}
		var got []byte
		if rest, err := asn1.Unmarshal(ext.Value, &got); err != nil || len(rest) > 0 {
			return fail(acme.Unauthorized, "the acmeIdentifier extension from %s is malformed", target)
		}
		if subtle.ConstantTimeCompare(got, sum[:]) != 1 {
			return fail(acme.IncorrectResponse, "the acmeIdentifier extension from %s holds the wrong key authorization", target)
		}
		return nil
	}
	return fail(acme.Unauthorized, "the certificate from %s has no acmeIdentifier extension", target)
}

// namesOnly: the certificate's subject alternative names are the one
// identifier being validated, nothing else (RFC 8737 §3, RFC 8738 §6).
func namesOnly(c *x509.Certificate, id acme.Identifier) bool {
	if len(c.EmailAddresses)+len(c.URIs) > 0 {
		return false
	}
	if id.Type == "ip" {
		want, _ := netip.ParseAddr(id.Value)
		return len(c.DNSNames) == 0 && len(c.IPAddresses) == 1 && c.IPAddresses[0].Equal(net.IP(want.AsSlice()))
	}
	return len(c.IPAddresses) == 0 && len(c.DNSNames) == 1 && strings.EqualFold(c.DNSNames[0], id.Value)
}

// reverseName is the in-addr.arpa / ip6.arpa name RFC 8738 §6 sends as SNI.
func reverseName(a netip.Addr) string {
	name, err := dns.ReverseAddr(a.String())
	if err != nil {
		return a.String()
	}
	return strings.TrimSuffix(name, ".")
}

func trunc(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}
