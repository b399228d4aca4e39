package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"signet/internal/acme/client"
)

// TestCycleNextWake: with the server unreachable and an installed
// certificate not due, the agent sleeps until a future time, not in a loop:
// neither an old failure's retry time nor renewal information it could not
// get wakes it at once.
func TestCycleNextWake(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{CommonName: "a.test"}, DNSNames: []string{"a.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "cert.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer down.Close()

	st := &State{Certificates: map[string]*CertState{"a": {Serial: "5", Failures: 3, RetryAt: now.Add(-time.Minute), Error: "earlier"}}}
	if err := st.Save(dir); err != nil {
		t.Fatal(err)
	}
	cfg := &client.Config{Server: down.URL, Certificates: []client.Certificate{{Name: "a", DNS: []string{"a.test"}, CertFile: certFile, KeyFile: filepath.Join(dir, "key.pem"), Challenges: client.Challenges{HTTP01: "standalone:1"}}}}
	a := &Agent{Config: cfg, StateDir: dir, Client: client.New(down.URL+"/dir", down.Client(), key, "test"), Out: io.Discard, Now: func() time.Time { return now }}
	next, err := a.Cycle(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !next.After(now) {
		t.Fatalf("next wake %v is not after now %v: the daemon would spin", next, now)
	}
	got, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cs := got.Certificates["a"]; cs.Failures != 0 || cs.CheckAt.IsZero() {
		t.Fatalf("state after a cycle with nothing due: %+v", cs)
	}
}
