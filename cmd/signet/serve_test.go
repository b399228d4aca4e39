package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/kms/kmstest"
)

// lockedBuffer lets the test read what the server prints while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServe runs `signet serve` on a fresh home, as the README's first
// command does, and drives its HTTPS API: health, authenticated issuance,
// problem documents for bad calls, TLS 1.2 minimum, graceful shutdown.
func TestServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	exited := make(chan int, 1)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	go func() {
		exited <- run(ctx, []string{"serve", "--home", dir, "--listen", addr, "--http-listen", httpAddr}, nil, &stdout, &stderr)
	}()
	t.Cleanup(cancel)

	client := waitHealthy(t, dir, addr, exited, &stderr)
	if !strings.Contains(stdout.String(), "WARNING") || !strings.Contains(stdout.String(), "created signet home") {
		t.Errorf("first start should say what it created and warn about the trial passphrase:\n%s", stdout.String())
	}
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + addr

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "svc.example.org"}, DNSNames: []string{"svc.example.org"},
	}, key)
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})
	issueURL := base + "/api/v1/authorities/default/certificates"
	post := func(tok, ctype string, body []byte) *http.Response {
		req, _ := http.NewRequest("POST", issueURL, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	goodToken := strings.TrimSpace(string(token))
	longValidity, _ := json.Marshal(map[string]any{"csr": string(csrPEM), "validity": "213504d"}) // wrapped to 26 minutes once

	for _, tc := range []struct {
		name, token, ctype string
		body               []byte
		status             int
		problem            string
	}{
		{"no token", "", "application/pkcs10", csrPEM, 401, "urn:signet:error:unauthorized"},
		{"wrong token", goodToken + "x", "application/pkcs10", csrPEM, 401, "urn:signet:error:unauthorized"},
		{"garbage CSR", goodToken, "application/pkcs10", []byte("nonsense"), 400, "urn:signet:error:malformed"},
		{"unknown JSON field", goodToken, "application/json", []byte(`{"csr":"x","evil":1}`), 400, "urn:signet:error:malformed"},
		{"oversized", goodToken, "application/pkcs10", bytes.Repeat([]byte("A"), 1<<20), 400, "urn:signet:error:malformed"},
		{"wrong content type", goodToken, "text/plain", csrPEM, 400, "urn:signet:error:malformed"},
		{"validity beyond 100 years", goodToken, "application/json", longValidity, 400, "urn:signet:error:malformed"},
	} {
		resp := post(tc.token, tc.ctype, tc.body)
		var p struct{ Type, Detail string }
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != tc.status || p.Type != tc.problem || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: got %d %q (%s), want %d %q", tc.name, resp.StatusCode, p.Type, resp.Header.Get("Content-Type"), tc.status, tc.problem)
		}
	}

	// Nothing the bad calls sent was issued.
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"list", "--home", dir, "--json", "--internal"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("list: %s", errOut.String())
	}
	var listed []ca.CertificateView
	// The server's own certificate and the OCSP responder's of "default".
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil || len(listed) != 2 {
		t.Fatalf("after refused calls want 2 certificates (the server's and the OCSP responder's), got %d: %v", len(listed), err)
	}

	body, _ := json.Marshal(map[string]any{"csr": string(csrPEM), "validity": "7d"})
	resp := post(goodToken, "application/json", body)
	chainPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != "application/pem-certificate-chain" {
		t.Fatalf("issue: %d %s", resp.StatusCode, chainPEM)
	}
	block, rest := pem.Decode(chainPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < 7*24*time.Hour || got > 7*24*time.Hour+2*time.Minute {
		t.Errorf("validity %s, want 7 days", got)
	}
	roots := x509.NewCertPool()
	rootPEM, _ := os.ReadFile(filepath.Join(dir, "root.pem"))
	roots.AppendCertsFromPEM(rootPEM)
	inter := x509.NewCertPool()
	inter.AppendCertsFromPEM(rest)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "svc.example.org"}); err != nil {
		t.Errorf("issued chain does not verify: %v", err)
	}
	resp = post(goodToken, "application/pkcs10", csrDER)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("DER CSR: %d", resp.StatusCode)
	}

	// Revocation through the API reaches the CRL the leaf names, served on
	// the plain listener, promptly (same process: no polling delay).
	revokeURL := base + "/api/v1/certificates/" + fmt.Sprintf("%x", leaf.SerialNumber) + "/revoke"
	for _, tc := range []struct {
		body   string
		status int
	}{{`{"reason":"certificateHold"}`, 400}, {`{"reason":"superseded"}`, 200}, {`{"reason":"superseded"}`, 409}} {
		req, _ := http.NewRequest("POST", revokeURL, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+goodToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("revoke %s: %d, want %d", tc.body, resp.StatusCode, tc.status)
		}
	}
	if len(leaf.CRLDistributionPoints) != 1 || !strings.HasPrefix(leaf.CRLDistributionPoints[0], "http://"+httpAddr+"/crl/default/") {
		t.Fatalf("CDP %v, want under http://%s", leaf.CRLDistributionPoints, httpAddr)
	}
	inCRL := false
	for deadline := time.Now().Add(10 * time.Second); !inCRL && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(leaf.CRLDistributionPoints[0])
		if err != nil {
			t.Fatal(err)
		}
		der, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range crl.RevokedCertificateEntries {
			inCRL = inCRL || (e.SerialNumber.Cmp(leaf.SerialNumber) == 0 && e.ReasonCode == 4)
		}
	}
	if !inCRL {
		t.Error("the API revocation never reached the CRL")
	}

	// TLS 1.1 is refused.
	old := &tls.Config{MaxVersion: tls.VersionTLS11, RootCAs: roots}
	if conn, err := tls.Dial("tcp", addr, old); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown log: %s", stderr.String())
	}
}

// homeCLI returns signetCLI bound to the home dir.
func homeCLI(t *testing.T, dir string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		return signetCLI(t, append(args, "--home", dir)...)
	}
}

// startServe runs `signet serve --home dir` with the given extra arguments
// on free loopback ports, waits until it is healthy and stops it when the
// test ends. It returns the HTTPS address, a client trusting the home's
// root, and serve's standard output and error.
func startServe(t *testing.T, dir string, args ...string) (addr string, client *http.Client, stdout, stderr *lockedBuffer) {
	t.Helper()
	addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = new(lockedBuffer), new(lockedBuffer)
	exited := make(chan int, 1)
	args = append([]string{"serve", "--home", dir, "--listen", addr, "--http-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, args...)
	go func() { exited <- run(ctx, args, nil, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15 s")
		}
	})
	return addr, waitHealthy(t, dir, addr, exited, stderr), stdout, stderr
}

// waitHealthy polls /health until the server answers, trusting only the
// root the server wrote into its home.
func waitHealthy(t *testing.T, dir, addr string, exited chan int, stderr *lockedBuffer) *http.Client {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-exited:
			exited <- code // for the cleanup, which waits for it
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
		rootPEM, err := os.ReadFile(filepath.Join(dir, "root.pem"))
		if err == nil {
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(rootPEM)
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
			if resp, err := client.Get("https://" + addr + "/health"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return client
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server never became healthy: %s", stderr.String())
	return nil
}

// TestServeClientCertificate: administrators may authenticate with a client
// certificate from the admin authority; revoked ones and those from other
// authorities are refused.
func TestServeClientCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	cli := homeCLI(t, dir)
	t.Setenv("KEYPASS", "client key passphrase")
	cli("init")
	cli("authority", "add", "admins", "--purpose", "tls-client", "--generate", "--allow-email", "example.org")
	cli("authority", "add", "others", "--purpose", "tls-client", "--generate", "--allow-email", "example.org")
	keys := kms.NewManager(kms.Options{Passphrase: kms.Source("env:KEYPASS")})
	defer keys.Close()
	clientCert := func(authority, name string) (tls.Certificate, string) {
		keyFile, certFile := filepath.Join(t.TempDir(), name+".key"), filepath.Join(t.TempDir(), name+".pem")
		cli("issue", "--authority", authority, "--new-key", keyFile, "--key-passphrase", "env:KEYPASS",
			"--cn", name, "--email", name+"@example.org", "--usage", "client", "--out", certFile)
		signer, err := keys.Signer(context.Background(), "file:"+keyFile)
		if err != nil {
			t.Fatal(err)
		}
		var cert tls.Certificate
		rest, _ := os.ReadFile(certFile)
		for b, r := pem.Decode(rest); b != nil; b, r = pem.Decode(r) {
			cert.Certificate = append(cert.Certificate, b.Bytes)
		}
		leaf, _ := x509.ParseCertificate(cert.Certificate[0])
		cert.PrivateKey = signer
		return cert, fmt.Sprintf("%x", leaf.SerialNumber)
	}
	alice, aliceSerial := clientCert("admins", "alice")
	mallory, _ := clientCert("others", "mallory")

	addr, plain, _, _ := startServe(t, dir, "--admin-authority", "admins")
	roots := plain.Transport.(*http.Transport).TLSClientConfig.RootCAs
	// call sends cert whatever issuers the server names (as curl --cert
	// does; Go's client would otherwise keep a certificate it does not ask for).
	call := func(cert *tls.Certificate, path string) (int, string) {
		cfg := &tls.Config{RootCAs: roots}
		if cert != nil {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get("https://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		var p struct{ Type string }
		if resp.Header.Get("Content-Type") == "application/problem+json" {
			json.NewDecoder(resp.Body).Decode(&p)
		}
		resp.Body.Close()
		return resp.StatusCode, p.Type
	}
	get := func(cert *tls.Certificate) int {
		status, _ := call(cert, "/api/v1/authorities")
		return status
	}
	if got := get(&alice); got != http.StatusOK {
		t.Errorf("admin client certificate: %d, want 200", got)
	}
	if got := get(&mallory); got != http.StatusUnauthorized {
		t.Errorf("client certificate from another authority: %d, want 401", got)
	}
	if got := get(nil); got != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", got)
	}
	// An unrelated self-signed certificate, and an expired one, do not
	// break the handshake: public routes answer, admin routes refuse them.
	for name, validity := range map[string]time.Duration{"self-signed": time.Hour, "expired": -time.Hour} {
		stranger := selfSigned(t, name, validity)
		for _, path := range []string{"/health", "/acme/default/directory"} {
			if got, _ := call(&stranger, path); got != http.StatusOK {
				t.Errorf("%s client certificate, GET %s: %d, want 200", name, path, got)
			}
		}
		if got, problem := call(&stranger, "/api/v1/authorities"); got != http.StatusUnauthorized || problem != "urn:signet:error:unauthorized" {
			t.Errorf("%s client certificate on the API: %d %q, want 401 urn:signet:error:unauthorized", name, got, problem)
		}
	}

	// Cross-site requests a browser holding alice's certificate (or, in
	// one rule, a token) would send are refused before they change
	// anything, an empty-body revocation included; same-origin ones pass.
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	_, victim := clientCert("admins", "victim")
	post := func(cert *tls.Certificate, bearer, path, ctype, body string, header ...string) (int, string) {
		req, _ := http.NewRequest("POST", "https://"+addr+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		cfg := &tls.Config{RootCAs: roots}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p struct{ Type string }
		json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p.Type
	}
	revokeVictim := "/api/v1/certificates/" + victim + "/revoke"
	bearer := strings.TrimSpace(string(token))
	for _, tc := range []struct {
		name                string
		cert                *tls.Certificate
		bearer, path, ctype string
		body                string
		header              []string
	}{
		{"certificate, Sec-Fetch-Site cross-site, empty body", &alice, "", revokeVictim, "", "", []string{"Sec-Fetch-Site", "cross-site"}},
		{"certificate, Sec-Fetch-Site same-site", &alice, "", revokeVictim, "", "", []string{"Sec-Fetch-Site", "same-site"}},
		{"certificate, foreign Origin, text/plain", &alice, "", revokeVictim, "text/plain", `{"reason":"keyCompromise"}`, []string{"Origin", "https://evil.example"}},
		{"certificate, form issuance", &alice, "", "/api/v1/authorities/default/certificates", "application/x-www-form-urlencoded", "csr=x", []string{"Origin", "null"}},
		{"token, Sec-Fetch-Site cross-site", nil, bearer, revokeVictim, "application/json", `{}`, []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
	} {
		if got, problem := post(tc.cert, tc.bearer, tc.path, tc.ctype, tc.body, tc.header...); got != http.StatusForbidden || problem != "urn:signet:error:rejected" {
			t.Errorf("%s: %d %q, want 403 urn:signet:error:rejected", tc.name, got, problem)
		}
	}
	victimStatus := func() string {
		var c ca.CertificateView
		json.Unmarshal([]byte(cli("show", victim, "--json")), &c)
		return string(c.Status)
	}
	if got := victimStatus(); got != "valid" {
		t.Errorf("after refused cross-site revocations the certificate is %q, want valid", got)
	}
	if got, _ := post(&alice, "", revokeVictim, "", "", "Sec-Fetch-Site", "same-origin", "Origin", "https://"+addr); got != http.StatusOK {
		t.Errorf("same-origin revocation with the admin certificate: %d, want 200", got)
	}
	if got := victimStatus(); got != "revoked" {
		t.Errorf("after a same-origin revocation the certificate is %q, want revoked", got)
	}

	cli("revoke", aliceSerial, "--reason", "keyCompromise")
	if got, problem := call(&alice, "/api/v1/authorities"); got != http.StatusUnauthorized || problem != "urn:signet:error:unauthorized" {
		t.Errorf("revoked admin client certificate: %d %q, want 401 urn:signet:error:unauthorized", got, problem)
	}
	if got, _ := call(&alice, "/health"); got != http.StatusOK {
		t.Errorf("revoked admin client certificate, GET /health: %d, want 200", got)
	}
}

// TestServeSelfSignedAdminAuthority: a self-signed admin authority is the
// only anchor for administrators' client certificates over HTTPS: its own
// certificates are accepted; those of a root-chained authority, and of a
// second self-signed authority with the very same subject name, are not.
func TestServeSelfSignedAdminAuthority(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	cli := homeCLI(t, dir)
	t.Setenv("KEYPASS", "client key passphrase")
	cli("init")
	add := []string{"authority", "add", "--purpose", "tls-client", "--generate", "--allow-email", "example.org"}
	cli(append(add, "admins", "--self-signed", "--cn", "ops admins")...)
	cli(append(add, "impostor", "--self-signed", "--cn", "ops admins")...)
	cli(append(add, "others")...)
	keys := kms.NewManager(kms.Options{Passphrase: kms.Source("env:KEYPASS")})
	defer keys.Close()
	clientCert := func(authority, name string) tls.Certificate {
		keyFile, certFile := filepath.Join(t.TempDir(), name+".key"), filepath.Join(t.TempDir(), name+".pem")
		cli("issue", "--authority", authority, "--new-key", keyFile, "--key-passphrase", "env:KEYPASS",
			"--cn", name, "--email", name+"@example.org", "--usage", "client", "--out", certFile)
		signer, err := keys.Signer(context.Background(), "file:"+keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cert := tls.Certificate{PrivateKey: signer}
		rest, _ := os.ReadFile(certFile)
		for b, r := pem.Decode(rest); b != nil; b, r = pem.Decode(r) {
			cert.Certificate = append(cert.Certificate, b.Bytes)
		}
		return cert
	}
	addr, client, _, _ := startServe(t, dir, "--admin-authority", "admins")
	roots := client.Transport.(*http.Transport).TLSClientConfig.RootCAs
	for _, tc := range []struct {
		authority string
		want      int
	}{{"admins", http.StatusOK}, {"impostor", http.StatusUnauthorized}, {"others", http.StatusUnauthorized}} {
		cert := clientCert(tc.authority, "user-of-"+tc.authority)
		cfg := &tls.Config{RootCAs: roots, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get("https://" + addr + "/api/v1/authorities")
		if err != nil {
			t.Fatalf("GET with a certificate of %s: %v", tc.authority, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("client certificate of %s: %d, want %d", tc.authority, resp.StatusCode, tc.want)
		}
	}
}

// selfSigned is a client certificate no authority of signet issued,
// valid from now for validity (negative: expired that long ago).
func selfSigned(t *testing.T, cn string, validity time.Duration) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	from, to := time.Now(), time.Now().Add(validity)
	if validity < 0 {
		from = to.Add(-time.Hour)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn}, NotBefore: from, NotAfter: to,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestServeCipherSuites: in TLS 1.2 the listener takes only ECDHE with an
// AEAD (openssl s_client offering one suite at a time); CBC suites with
// SHA-1 MACs, which Go accepts by default, are refused. TLS 1.3 works.
func TestServeCipherSuites(t *testing.T) {
	openssl := kmstest.RequireTool(t, "openssl")
	dir := filepath.Join(t.TempDir(), "home")
	addr, _, _, _ := startServe(t, dir)
	handshake := func(args ...string) (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, openssl, append([]string{"s_client", "-connect", addr, "-servername", "localhost",
			"-CAfile", filepath.Join(dir, "root.pem"), "-verify_return_error"}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		return err == nil, string(out)
	}
	for _, suite := range []string{"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256"} {
		if ok, out := handshake("-tls1_2", "-cipher", suite); ok {
			t.Errorf("TLS 1.2 with %s succeeded:\n%s", suite, out)
		}
	}
	for _, suite := range []string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"} {
		if ok, out := handshake("-tls1_2", "-cipher", suite); !ok || !strings.Contains(out, suite) {
			t.Errorf("TLS 1.2 with %s failed:\n%s", suite, out)
		}
	}
	if ok, out := handshake("-tls1_3"); !ok || !strings.Contains(out, "TLSv1.3") {
		t.Errorf("TLS 1.3 failed:\n%s", out)
	}
}

// TestServeKeepsItsCertificate: serve's TLS key is a 0600 node key in the
// home, and its certificate is reused by the next start while it is
// valid, instead of a new one each start; a revoked one is replaced.
func TestServeKeepsItsCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	serial := func() string {
		var s string
		t.Run("serve", func(t *testing.T) {
			addr, client, _, _ := startServe(t, dir)
			resp, err := client.Get("https://" + addr + "/health")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			s = ca.Serial(resp.TLS.PeerCertificates[0].SerialNumber)
		})
		return s
	}
	first := serial()
	fi, err := os.Stat(filepath.Join(dir, "server-tls.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server-tls.key: %v, %v; want a 0600 file", fi, err)
	}
	if again := serial(); again != first {
		t.Errorf("second start serves certificate %s, want the first start's %s", again, first)
	}
	homeCLI(t, dir)("revoke", first, "--reason", "superseded")
	if third := serial(); third == first {
		t.Errorf("after its revocation, serve still serves certificate %s", first)
	}
}
