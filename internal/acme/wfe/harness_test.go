package wfe_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	xacme "golang.org/x/crypto/acme"

	"signet/internal/acme/eab"
	"signet/internal/acme/va"
	"signet/internal/acme/wfe"
	"signet/internal/ca"
	"signet/internal/home"
	"signet/internal/kms"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
	"signet/internal/store"
)

// env is a complete ACME server over a fresh home, with the peers a client
// needs: an http-01 responder, a tls-alpn-01 responder and a DNS server
// answering A 127.0.0.1 for every name and the TXT records a test sets.
type env struct {
	t      *testing.T
	h      *home.Home
	wfe    *wfe.WFE
	ts     *httptest.Server
	dirURL string
	sealer *eab.Sealer

	mu        sync.Mutex
	http      map[string]string          // token -> key authorization
	txt       map[string]string          // name -> TXT value
	alpn      map[string]tls.Certificate // identifier -> challenge certificate
	hold      chan struct{}              // when set, http-01 answers wait for it to close
	redirects map[string]string          // http-01 path -> where it redirects
	ahead     atomic.Int64               // how far the front end's clock is ahead of the real one
	aRecords  map[string][]net.IP        // name -> its A records (default 127.0.0.1)
	roots     *x509.CertPool
}

func newEnv(t *testing.T, requireEAB ...string) *env {
	t.Helper()
	return newEnvWith(t, nil, requireEAB...)
}

// newEnvWith is newEnv with the front end's options changed by opt.
func newEnvWith(t *testing.T, opt func(*wfe.Options), requireEAB ...string) *env {
	t.Helper()
	ctx := context.Background()
	h, _, err := home.Init(ctx, t.TempDir(), home.InitOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	on := true
	for _, name := range requireEAB {
		if _, _, err := h.CA.ChangeAuthority(ctx, name, store.AuthorityChange{RequireEAB: &on}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, h: h, http: map[string]string{}, txt: map[string]string{}, alpn: map[string]tls.Certificate{}, redirects: map[string]string{}, aRecords: map[string][]net.IP{}}

	// http-01 responder; a token in redirects is answered with a redirect
	// to its URL instead.
	serveHTTP := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		e.mu.Lock()
		ka, ok := e.http[tok]
		to, redirected := e.redirects[r.URL.Path]
		hold := e.hold
		e.mu.Unlock()
		if redirected {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		if !ok || !strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") && !strings.HasPrefix(r.URL.Path, "/moved/") {
			http.NotFound(w, r)
			return
		}
		if hold != nil {
			select {
			case <-hold:
			case <-time.After(10 * time.Second):
			}
		}
		io.WriteString(w, ka)
	})
	hl := listen(t)
	hs := &http.Server{Handler: serveHTTP}
	go hs.Serve(hl)
	t.Cleanup(func() { hs.Close() })

	// Port "443": tls-alpn-01 for clients offering acme-tls/1, otherwise
	// the http-01 responder over HTTPS (redirects to https land here).
	httpsCert := selfSigned(t)
	tl := listen(t)
	ts := &http.Server{Handler: serveHTTP,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){
			"acme-tls/1": func(_ *http.Server, c *tls.Conn, _ http.Handler) { c.Close() },
		},
		TLSConfig: &tls.Config{NextProtos: []string{"acme-tls/1", "http/1.1"},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				if !slices.Contains(hello.SupportedProtos, "acme-tls/1") {
					return &httpsCert, nil
				}
				e.mu.Lock()
				defer e.mu.Unlock()
				for name, c := range e.alpn {
					if hello.ServerName == name || strings.HasSuffix(hello.ServerName, ".in-addr.arpa") && net.ParseIP(name) != nil {
						return &c, nil
					}
				}
				return nil, io.EOF
			}}}
	go ts.ServeTLS(tl, "", "")
	t.Cleanup(func() { ts.Close() })

	// DNS server.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ds := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(m)
		q := m.Question[0]
		switch q.Qtype {
		case dns.TypeA:
			e.mu.Lock()
			ips, ok := e.aRecords[strings.TrimSuffix(q.Name, ".")]
			e.mu.Unlock()
			if !ok {
				ips = []net.IP{net.IPv4(127, 0, 0, 1)}
			}
			for _, ip := range ips {
				r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: ip})
			}
		case dns.TypeTXT:
			e.mu.Lock()
			v, ok := e.txt[strings.TrimSuffix(q.Name, ".")]
			e.mu.Unlock()
			if ok {
				r.Answer = append(r.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v}})
			}
		}
		w.WriteMsg(r)
	})}
	go ds.ActivateAndServe()
	t.Cleanup(func() { ds.Shutdown() })

	kek := make([]byte, 32)
	rand.Read(kek)
	e.sealer, _ = eab.NewSealer(kek)
	o := wfe.Options{
		CA: h.CA, Store: h.Store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		UnsealEAB: e.sealer.Open, ValidationWait: 500 * time.Millisecond,
		Clock: func() time.Time { return time.Now().Add(time.Duration(e.ahead.Load())) },
		VA:    va.New(va.Options{Resolver: pc.LocalAddr().String(), HTTPPort: port(hl.Addr()), TLSPort: port(tl.Addr()), Timeout: 5 * time.Second}),
	}
	if opt != nil {
		opt(&o)
	}
	e.wfe, err = wfe.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.wfe.Close)
	srv := server.New(server.Options{CA: h.CA, Store: h.Store, ACME: e.wfe, Authority: "default", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.ts = httptest.NewUnstartedServer(srv.Handler())
	e.ts.StartTLS()
	t.Cleanup(e.ts.Close)
	e.dirURL = e.ts.URL + "/acme/default/directory"
	root, err := h.CA.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.roots = x509.NewCertPool()
	e.roots.AddCert(root)
	return e
}

// selfSigned is a throwaway certificate for the HTTPS side of the
// responder: the VA does not verify it (the key authorization is the proof).
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func listen(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func port(a net.Addr) int {
	_, p, _ := net.SplitHostPort(a.String())
	n, _ := strconv.Atoi(p)
	return n
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// client returns an x/crypto/acme client with a fresh account key.
func (e *env) client(key crypto.Signer) *xacme.Client {
	if key == nil {
		key = newKey(e.t)
	}
	return &xacme.Client{Key: key, DirectoryURL: e.dirURL, HTTPClient: e.ts.Client(), UserAgent: "signet-test"}
}

// authority creates a tls-server authority under the root, its key beside
// the root's, with the name policy pol.
func (e *env) authority(name string, pol policy.Policy) {
	e.t.Helper()
	ctx := context.Background()
	uri, err := e.h.GenerateKeyBesideRoot(ctx, name, kms.KeyType("ecdsa-p256"), "test")
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.h.CA.CreateAuthority(ctx, ca.AuthoritySpec{Name: name, Purpose: profile.Purpose("tls-server"), KeyURI: uri,
		Policy: pol, Actor: "test", DefaultValidity: 24 * time.Hour, ACME: true}); err != nil {
		e.t.Fatal(err)
	}
}

// register creates an account.
func (e *env) register(c *xacme.Client) *xacme.Account {
	e.t.Helper()
	a, err := c.Register(context.Background(), &xacme.Account{Contact: []string{"mailto:ops@example.org"}}, xacme.AcceptTOS)
	if err != nil {
		e.t.Fatalf("register: %v", err)
	}
	return a
}

// solve answers the named challenge of an authorization and waits for it.
func (e *env) solve(c *xacme.Client, authzURL, typ string) *xacme.Authorization {
	e.t.Helper()
	ctx := context.Background()
	az, err := c.GetAuthorization(ctx, authzURL)
	if err != nil {
		e.t.Fatal(err)
	}
	var ch *xacme.Challenge
	for _, x := range az.Challenges {
		if x.Type == typ {
			ch = x
		}
	}
	if ch == nil {
		e.t.Fatalf("authorization %s has no %s challenge", authzURL, typ)
	}
	e.mu.Lock()
	switch typ {
	case "http-01":
		ka, _ := c.HTTP01ChallengeResponse(ch.Token)
		e.http[ch.Token] = ka
	case "dns-01":
		rec, _ := c.DNS01ChallengeRecord(ch.Token)
		e.txt["_acme-challenge."+az.Identifier.Value] = rec
	case "tls-alpn-01":
		cert, err := c.TLSALPN01ChallengeCert(ch.Token, az.Identifier.Value)
		if err != nil {
			e.t.Fatal(err)
		}
		e.alpn[az.Identifier.Value] = cert
	}
	e.mu.Unlock()
	if _, err := c.Accept(ctx, ch); err != nil {
		e.t.Fatalf("accept %s: %v", typ, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	az, err = c.WaitAuthorization(wctx, authzURL)
	if err != nil {
		e.t.Fatalf("wait for %s: %v", typ, err)
	}
	return az
}

// csr makes a CSR for the names with a fresh P-256 key.
func csr(t *testing.T, key crypto.Signer, names ...string) []byte {
	tmpl := &x509.CertificateRequest{}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if key == nil {
		key = newKey(t)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// verify checks a downloaded chain against the root.
func (e *env) verify(chain [][]byte, names ...string) *x509.Certificate {
	e.t.Helper()
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		e.t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: e.roots, Intermediates: inter, DNSName: n}); err != nil {
			e.t.Errorf("verify %s: %v", n, err)
		}
	}
	return leaf
}
