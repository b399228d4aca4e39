package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"signet/internal/ca"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/rogpeppe/go-internal/testscript"

	"signet/internal/acme/load"
)

// cmdFlipByte inverts the byte at OFFSET of FILE (negative: from the end),
// as an attacker who alters an archive would.
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	if off < 0 {
		off += len(b)
	}
	b[off] ^= 0xff
	ts.Check(os.WriteFile(path, b, 0o600))
}

// cmdAgeKeygen writes a new age X25519 identity to FILE and sets VAR to its
// recipient, as age-keygen does.
func cmdAgeKeygen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: agekeygen FILE VAR")
	}
	id, err := age.GenerateX25519Identity()
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Clean(ts.MkAbs(args[0])), []byte(id.String()+"\n"), 0o600))
	ts.Setenv(args[1], id.Recipient().String())
}

// TestBackupWhileServing backs a home up while ACME clients (the load
// driver of internal/acme/load) obtain certificates from `signet serve`,
// restores the archive into a new home and serves it: the audit
// log of the snapshot verifies (every certificate in it has its issue
// event), and OpenSSL gets the same OCSP status, revocation time and reason
// from both servers for a revoked and a valid certificate, as the whole
// CRLs list the same entries.
func TestBackupWhileServing(t *testing.T) {
	t.Setenv("BACKUP_PASS", "a long backup passphrase")
	work := t.TempDir()
	dir := filepath.Join(work, "home")
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	resp, err := load.StartResponders()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	_, http01, _ := net.SplitHostPort(resp.HTTPAddr)
	addr, client, _, _ := startServe(t, dir, "--http-listen", httpAddr, "--acme-resolver", resp.DNSAddr, "--acme-http-port", http01)
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	api := func(path, ctype string, body []byte) (int, []byte) {
		req, _ := http.NewRequest("POST", "https://"+addr+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := client.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	issue := func(name string) (int, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
		return api("/api/v1/authorities/default/certificates", "application/pkcs10", csr)
	}
	mustIssue := func(name string) []byte {
		code, chain := issue(name)
		if code != http.StatusCreated {
			t.Fatalf("issue %s: %d %s", name, code, chain)
		}
		return chain
	}
	revokedPEM, validPEM := mustIssue("revoked.example.org"), mustIssue("valid.example.org")
	for name, b := range map[string][]byte{"revoked.pem": revokedPEM, "valid.pem": validPEM} {
		if err := os.WriteFile(filepath.Join(work, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	block, chain := pem.Decode(revokedPEM)
	leaf, _ := x509.ParseCertificate(block.Bytes)
	if err := os.WriteFile(filepath.Join(work, "chain.pem"), chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, b := api(fmt.Sprintf("/api/v1/certificates/%x/revoke", leaf.SerialNumber), "application/json", []byte(`{"reason":"keyCompromise"}`)); code != 200 {
		t.Fatalf("revoke: %d %s", code, b)
	}

	// ACME clients issue without pause while the backup runs.
	roots := x509.NewCertPool()
	rootPEM, _ := os.ReadFile(filepath.Join(dir, "root.pem"))
	roots.AppendCertsFromPEM(rootPEM)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var res load.Result
	wg.Go(func() {
		res, _ = load.Run(ctx, load.Config{Directory: "https://" + addr + "/acme/default/directory", Roots: roots,
			Clients: 4, Count: 1 << 20, Duration: time.Minute}, resp)
	})
	acmeIssued := func() int {
		var n int
		for _, c := range listJSON(t, dir) {
			if strings.HasPrefix(c.Requester, "acme:") {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); acmeIssued() == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	before := acmeIssued()
	archive := filepath.Join(work, "home.age")
	signetCLI(t, "backup", "--home", dir, "--out", archive, "--passphrase", "env:BACKUP_PASS")
	after := acmeIssued()
	cancel()
	wg.Wait()
	if before == 0 || after == before || res.Issued == 0 {
		t.Errorf("ACME clients did not issue while the backup ran: %d before it, %d after, %d in all (%v)", before, after, res.Issued, res.FirstErr)
	}

	restored := filepath.Join(work, "restored")
	signetCLI(t, "restore", archive, "--home", restored, "--passphrase", "env:BACKUP_PASS")
	if out := signetCLI(t, "audit", "verify", "--home", restored); !strings.Contains(out, "RESTORED") {
		t.Errorf("audit verify of the restored home does not report the restore:\n%s", out)
	}
	rHTTP := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startServe(t, restored, "--http-listen", rHTTP)

	root := filepath.Join(dir, "root.pem")
	ocsp := func(http, cert string) string {
		out := tool(t, nil, "openssl", "ocsp", "-issuer", filepath.Join(work, "chain.pem"), "-cert", filepath.Join(work, cert),
			"-url", "http://"+http+"/ocsp/default", "-CAfile", root, "-no_nonce")
		var keep []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, ": ") && !strings.Contains(l, "This Update") && !strings.Contains(l, "Next Update") {
				keep = append(keep, strings.TrimSpace(l))
			}
		}
		return strings.Join(keep, "\n")
	}
	for _, cert := range []string{"revoked.pem", "valid.pem"} {
		a, b := ocsp(httpAddr, cert), ocsp(rHTTP, cert)
		if a != b || a == "" {
			t.Errorf("%s: OCSP from the original:\n%s\nfrom the restored:\n%s", cert, a, b)
		}
	}
	if a := ocsp(httpAddr, "revoked.pem"); !strings.Contains(a, "revoked") || !strings.Contains(a, "keyCompromise") {
		t.Errorf("the revoked certificate's OCSP answer: %s", a)
	}
	crlURL, err := url.Parse(leaf.CRLDistributionPoints[0])
	if err != nil {
		t.Fatal(err)
	}
	crl := func(http string) map[string]string {
		resp, err := client.Get("http://" + http + crlURL.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		der, _ := io.ReadAll(resp.Body)
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatalf("CRL from %s: %v", http, err)
		}
		entries := map[string]string{}
		for _, e := range l.RevokedCertificateEntries {
			entries[e.SerialNumber.Text(16)] = fmt.Sprint(e.RevocationTime.UTC(), " ", e.ReasonCode)
		}
		return entries
	}
	if a, b := crl(httpAddr), crl(rHTTP); fmt.Sprint(a) != fmt.Sprint(b) || a[leaf.SerialNumber.Text(16)] == "" {
		t.Errorf("whole CRLs differ or lack the revoked certificate: original %v, restored %v", a, b)
	}
}

// listJSON lists every certificate of the home at dir, as signet list --json.
func listJSON(t *testing.T, dir string) []ca.CertificateView {
	t.Helper()
	var out, errb lockedBuffer
	if code := run(context.Background(), []string{"list", "--home", dir, "--json", "--all", "--limit", "1000000"}, nil, &out, &errb); code != 0 {
		t.Fatalf("signet list: %s", errb.String())
	}
	var certs []ca.CertificateView
	if err := json.Unmarshal([]byte(out.String()), &certs); err != nil {
		t.Fatal(err)
	}
	return certs
}
