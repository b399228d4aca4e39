package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net"
	"path/filepath"
	"testing"

	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/lint"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
	"signet/internal/store"
	"signet/internal/store/postgres"
	"signet/internal/store/postgres/pgtest"
	"signet/internal/store/sqlite"
)

// fixture is a real CA for the server's tests: a SQLite store, encrypted
// software keys in a temporary directory and the lint gate.
type fixture struct {
	keys  *kms.Manager
	store store.Store
	ca    *ca.CA
	where string // the SQLite file or PostgreSQL URL
}

// newFixture makes the CA and generates one key of type typ for each uri.
func newFixture(t testing.TB, typ kms.KeyType, uris ...string) fixture {
	t.Helper()
	return newFixtureOn(t, "sqlite", typ, uris...)
}

// backends are the stores the server's tests run on: PostgreSQL needs
// SIGNET_TEST_POSTGRES (./scripts/test starts one).
var backends = []string{"sqlite", "postgres"}

// newFixtureOn is newFixture on the backend named ("sqlite" or "postgres").
func newFixtureOn(t testing.TB, backend string, typ kms.KeyType, uris ...string) fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("TEST_PASSPHRASE", "a long test passphrase")
	keys := kms.NewManager(kms.Options{Dir: dir, Passphrase: kms.Source("env:TEST_PASSPHRASE")})
	t.Cleanup(func() { keys.Close() })
	var st store.Store
	var err error
	where := filepath.Join(dir, "db")
	if backend == "postgres" {
		where = pgtest.URL(t)
		st, err = postgres.Open(ctx, where)
	} else {
		st, err = sqlite.Open(ctx, where)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, uri := range uris {
		if _, err := keys.Generate(ctx, uri, typ); err != nil {
			t.Fatal(err)
		}
	}
	gate, err := lint.New()
	if err != nil {
		t.Fatal(err)
	}
	return fixture{keys: keys, store: st, ca: ca.New(ca.Options{Store: st, Keys: keys, Lint: gate}), where: where}
}

// newWebFixture is a fixture on backend with a root and one tls-server
// authority "web" for example.org, keys P-256 files.
func newWebFixture(t *testing.T, backend string) fixture {
	t.Helper()
	ctx := context.Background()
	f := newFixtureOn(t, backend, kms.ECDSAP256, "file:root.key", "file:web.key")
	if _, err := f.ca.CreateRoot(ctx, ca.RootSpec{CommonName: "test root", KeyURI: "file:root.key"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ca.CreateAuthority(ctx, ca.AuthoritySpec{Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key",
		Policy: policy.Policy{DNS: []string{"example.org"}}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// csrFor is a PEM CSR for the DNS names, with a new P-256 key.
func csrFor(t *testing.T, names ...string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// serveTLS runs srv on a loopback listener with its own TLS configuration
// until the test ends, and returns its address.
func serveTLS(tb testing.TB, srv *server.Server) string {
	tb.Helper()
	ctx := context.Background()
	tlsConfig, err := srv.TLSConfig(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln, tlsConfig) }()
	tb.Cleanup(func() { stop(); <-served })
	return ln.Addr().String()
}
