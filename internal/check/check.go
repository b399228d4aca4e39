// Package check examines a TLS endpoint as its clients meet it: the
// protocol versions and cipher suites it accepts, the certificate chain it
// serves against a set of roots, the names and keys in it, how long it has
// left, and its revocation state from the certificate's own OCSP and CRL
// URLs. Plain-text protocols are entered with STARTTLS (XMPP, SMTP,
// PostgreSQL). Every connection, read and download is bounded in time and
// size. signet check prints its findings; --record keeps them.
package check

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Level is how a finding counts: the worst one is the verdict.
type Level int

const (
	Info Level = iota // said for completeness (SSLv3: not probed); counts as ok
	OK
	Warn
	Fail
)

func (l Level) String() string {
	return [...]string{"info", "ok", "warn", "fail"}[l]
}

// ParseLevel is the inverse of String.
func ParseLevel(s string) (Level, error) {
	for l := Info; l <= Fail; l++ {
		if l.String() == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("verdict %q is none of info, ok, warn and fail", s)
}

func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	*l = v
	return err
}

// Finding is one line of a report.
type Finding struct {
	Level   Level  `json:"level"`
	Check   string `json:"check"` // protocol, suites, chain, name, key, expiry, ocsp, crl, signet
	Message string `json:"message"`
}

// Report is everything one check found.
type Report struct {
	Endpoint string    `json:"endpoint"` // HOST:PORT
	StartTLS string    `json:"starttls,omitempty"`
	Name     string    `json:"name"`
	Time     time.Time `json:"time"`
	Verdict  Level     `json:"verdict"`
	// Serial and NotAfter are the served leaf certificate's, when the
	// handshake got that far.
	Serial   string     `json:"serial,omitempty"`
	NotAfter *time.Time `json:"not_after,omitempty"`
	Findings []Finding  `json:"findings"`

	// Leaf is the certificate served (nil if none): for Inventory checks.
	Leaf *x509.Certificate `json:"-"`
}

func (r *Report) add(l Level, check, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{l, check, fmt.Sprintf(format, args...)})
	if l > r.Verdict {
		r.Verdict = l
	}
}

// Add appends a finding made outside this package (signet's own records).
func (r *Report) Add(f Finding) { r.add(f.Level, f.Check, "%s", f.Message) }

// Options say what to check and how.
type Options struct {
	Address  string // HOST:PORT
	StartTLS string // "", xmpp, xmpp-server, smtp, postgres
	// Name is the name the certificate must carry: the DNS name, or for
	// XMPP the service domain; "" is the address's host.
	Name string
	// Roots verify the chain; RootsFrom says what they are in messages.
	// Nil Roots are the system's.
	Roots     *x509.CertPool
	RootsFrom string
	// Timeout bounds each connection and each download (0: 10 seconds).
	Timeout time.Duration
	// Now is the time validity is judged at (zero: the time of the check).
	Now time.Time
}

func (o *Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 10 * time.Second
}

// Run checks the endpoint. Its error is for checks that could not start
// (a malformed address); an endpoint that cannot be reached is a failing
// report.
func Run(ctx context.Context, o Options) (*Report, error) {
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q is not HOST:PORT: %w", o.Address, err)
	}
	if _, err := DefaultPort(o.StartTLS); err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = host
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	// Every connection and download is bounded by o.Timeout; the whole
	// check by maxConnections timeouts (5 minutes by default), however
	// slowly a server answers each of its few hundred handshakes.
	ctx, cancel := context.WithTimeout(ctx, maxConnections*o.timeout())
	defer cancel()
	r := &Report{Endpoint: o.Address, StartTLS: o.StartTLS, Name: o.Name, Time: o.Now.UTC().Round(time.Second), Verdict: OK}
	p := &prober{o: o}
	if !p.protocols(ctx, r) {
		return r, nil
	}
	certs, err := p.chain(ctx)
	if err != nil && p.legacy != 0 {
		// Go's client lacks the server's suites (DHE, CCM...): TLS up to
		// 1.2 sends the certificates in the clear after the ServerHello.
		var rawErr error
		if certs, rawErr = p.rawChain(ctx, p.legacy); rawErr == nil {
			r.add(Info, "chain", "read from a %s handshake of signet's own (Go's TLS client could not complete one: %v)", versionName(p.legacy), err)
			err = nil
		}
	}
	if err != nil {
		r.add(Fail, "chain", "no TLS handshake with Go's TLS client to read the certificate: %v", err)
		return r, nil
	}
	r.Leaf = certs[0]
	r.Serial = fmt.Sprintf("%x", certs[0].SerialNumber)
	na := certs[0].NotAfter.UTC()
	r.NotAfter = &na
	issuer := verifyChain(r, o, certs)
	checkNames(r, o, certs[0])
	revocation(ctx, r, o, certs[0], issuer)
	return r, nil
}

// prober makes the connections of one check.
type prober struct {
	o      Options
	legacy uint16 // the highest version up to TLS 1.2 the server accepts; 0 for none
}

// dial connects and runs the STARTTLS exchange, with a deadline on all of it
// and on the handshake that follows.
func (p *prober) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.timeout())
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.o.Address)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(p.o.timeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	if err := startTLS(c, p.o.StartTLS, p.o.Name); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// hello sends one raw ClientHello and reads the answer.
func (p *prober) hello(ctx context.Context, version uint16, offer []uint16) (serverHello, error) {
	c, err := p.dial(ctx)
	if err != nil {
		return serverHello{}, err
	}
	defer c.Close()
	var random [32]byte
	rand.Read(random[:])
	sni := p.o.Name
	if net.ParseIP(sni) != nil {
		sni = ""
	}
	if _, err := c.Write(clientHello(version, offer, sni, random)); err != nil {
		return serverHello{}, err
	}
	return readServerHello(c)
}

// protocols probes TLS 1.0 to 1.3 and, for each of 1.0 to 1.2 the server
// accepts, the suites it accepts. It returns false if the endpoint cannot
// be reached at all.
func (p *prober) protocols(ctx context.Context, r *Report) bool {
	c, err := p.dial(ctx)
	if err != nil {
		r.add(Fail, "connect", "cannot connect to %s: %v", p.o.Address, err)
		return false
	}
	c.Close()
	r.add(Info, "protocol", "SSLv3: not probed (no current TLS library speaks it)")
	all := make([]uint16, len(suites))
	for i, s := range suites {
		all[i] = s.id
	}
	any := false
	for _, v := range []uint16{versionTLS10, versionTLS11, versionTLS12} {
		h, err := p.hello(ctx, v, all)
		switch {
		case errors.Is(err, errRefused) || err == nil && h.version != v:
			lvl := OK
			if v == versionTLS12 {
				lvl = Info
			}
			r.add(lvl, "protocol", "%s: not accepted", versionName(v))
			continue
		case err != nil:
			r.add(Warn, "protocol", "%s: cannot probe: %v", versionName(v), err)
			continue
		}
		any = true
		p.legacy = v
		if v < versionTLS12 {
			r.add(Fail, "protocol", "%s: accepted (deprecated by RFC 8996)", versionName(v))
		} else {
			r.add(OK, "protocol", "%s: accepted", versionName(v))
		}
		p.suites(ctx, r, v, all)
	}
	if c, err = p.dial(ctx); err != nil {
		r.add(Fail, "protocol", "TLS 1.3: cannot probe: %v", err)
		return false
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: p.sni(), MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13})
	err = tc.HandshakeContext(ctx)
	tc.Close()
	switch {
	case err == nil:
		any = true
		r.add(OK, "protocol", "TLS 1.3: accepted")
	case any:
		r.add(Warn, "protocol", "TLS 1.3: not accepted")
	default:
		r.add(Fail, "protocol", "no TLS version accepted (TLS 1.3: %v)", err)
		return false
	}
	return true
}

func (p *prober) sni() string {
	if net.ParseIP(p.o.Name) != nil {
		return ""
	}
	return p.o.Name
}

// maxSuites bounds the handshakes one enumeration makes.
const maxSuites = 80

// maxConnections timeouts bound a whole check.
const maxConnections = 30

// suites enumerates the suites the server accepts at version v: offer all
// it has not chosen yet until it refuses, one handshake per suite.
func (p *prober) suites(ctx context.Context, r *Report, v uint16, offer []uint16) {
	offer = append([]uint16(nil), offer...)
	var good []string
	worst := OK
	var flagged []string
	for range maxSuites {
		h, err := p.hello(ctx, v, offer)
		if errors.Is(err, errRefused) || err == nil && h.version != v {
			break
		}
		if err != nil {
			r.add(Warn, "suites", "%s: enumeration stopped: %v", versionName(v), err)
			break
		}
		s, known := suiteByID(h.suite)
		i := indexOf(offer, h.suite)
		if !known || i < 0 {
			r.add(Fail, "suites", "%s: server chose suite 0x%04x, which was not offered", versionName(v), h.suite)
			break
		}
		offer = append(offer[:i], offer[i+1:]...)
		lvl, why := s.flaws()
		if lvl == OK {
			good = append(good, s.name)
			continue
		}
		worst = max(worst, lvl)
		flagged = append(flagged, fmt.Sprintf("%s (%s)", s.name, why))
		if len(offer) == 0 {
			break
		}
	}
	if len(flagged) > 0 {
		r.add(worst, "suites", "%s: weak suites accepted: %s", versionName(v), strings.Join(flagged, ", "))
	}
	if len(good) > 0 {
		r.add(OK, "suites", "%s: %s", versionName(v), strings.Join(good, ", "))
	}
}

func indexOf(s []uint16, v uint16) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// rawChain sends a ClientHello for version v offering every suite and
// returns the certificates of the server's first flight.
func (p *prober) rawChain(ctx context.Context, v uint16) ([]*x509.Certificate, error) {
	c, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ids := make([]uint16, len(suites))
	for i, s := range suites {
		ids[i] = s.id
	}
	var random [32]byte
	rand.Read(random[:])
	if _, err := c.Write(clientHello(v, ids, p.sni(), random)); err != nil {
		return nil, err
	}
	ders, err := readCertificates(c)
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("certificate %d the server sent: %w", i, err)
		}
	}
	return certs, nil
}

// chain makes one handshake with Go's TLS client, accepting any version
// and every suite it has, and returns the certificates served.
func (p *prober) chain(ctx context.Context) ([]*x509.Certificate, error) {
	c, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	var ids []uint16
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		ids = append(ids, s.ID)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: p.sni(), MinVersion: tls.VersionTLS10, CipherSuites: ids})
	defer tc.Close()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("the server sent no certificate")
	}
	return certs, nil
}
