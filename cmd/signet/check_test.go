package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"signet/internal/kms/kmstest"
)

// checkCLI runs signet check and returns its output and exit status.
func checkCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut lockedBuffer
	code := run(context.Background(), append([]string{"check"}, args...), nil, &out, &errOut)
	t.Logf("signet check %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String() + errOut.String(), code
}

// startDaemon runs a server process until the test ends and waits until
// addr accepts connections.
func startDaemon(t *testing.T, addr string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.WaitDelay = 5 * time.Second // a daemon's children may hold its output open
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for range 200 {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never listened on %s: %s", name, addr, log.String())
}

// sServer is openssl s_server on a free loopback port serving cert (with
// the intermediates in chain, if any) and key.
func sServer(t *testing.T, cert, chain, key string, args ...string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	all := []string{"s_server", "-accept", addr, "-quiet", "-cert", cert, "-key", key}
	if chain != "" {
		all = append(all, "-cert_chain", chain)
	}
	startDaemon(t, addr, kmstest.RequireTool(t, "openssl"), append(all, args...)...)
	return addr
}

// wantLine fails unless out has a line matching re.
func wantLine(t *testing.T, out, re string) {
	t.Helper()
	if !regexp.MustCompile(`(?m)` + re).MatchString(out) {
		t.Errorf("no line matching %q in:\n%s", re, out)
	}
}

// checkHome is a home with a tls-server authority for example.org whose
// revocation services answer on the http listener the test starts.
type checkHome struct {
	dir, home, root string
	httpAddr        string // serve's plain-HTTP listener, named in the certificates
}

func newCheckHome(t *testing.T) *checkHome {
	t.Helper()
	h := &checkHome{dir: t.TempDir()}
	h.home = filepath.Join(h.dir, "home")
	t.Setenv("SIGNET_HOME", "")
	t.Setenv("HOME", filepath.Join(h.dir, "user")) // no home unless --home
	t.Setenv("XDG_DATA_HOME", "")
	h.httpAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	signetCLI(t, "init", "--home", h.home, "--http-listen", h.httpAddr)
	signetCLI(t, "authority", "add", "web", "--home", h.home, "--purpose", "tls-server", "--generate", "--allow-dns", "example.org")
	signetCLI(t, "authority", "add", "xmpp", "--home", h.home, "--purpose", "xmpp", "--generate", "--allow-dns", "example.org")
	h.root = filepath.Join(h.dir, "root.pem")
	if err := os.WriteFile(h.root, []byte(signetCLI(t, "root", "--home", h.home)), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// issue makes an RSA key with openssl and has authority issue its
// certificate for dns (and any --validity in dns); it returns the
// certificate, chain and key files.
func (h *checkHome) issue(t *testing.T, authority, name string, dns ...string) (cert, chain, key string) {
	t.Helper()
	key, csr := filepath.Join(h.dir, name+".key"), filepath.Join(h.dir, name+".csr")
	cert, chain = filepath.Join(h.dir, name+".pem"), filepath.Join(h.dir, name+"-chain.pem")
	tool(t, nil, "openssl", "req", "-new", "-nodes", "-subj", "/CN="+dns[0], "-newkey", "rsa:2048", "-keyout", key, "-out", csr)
	args := []string{"issue", "--home", h.home, "--authority", authority, "--csr", csr, "--cert-out", cert, "--chain-out", chain}
	for _, d := range dns {
		if v, ok := strings.CutPrefix(d, "--validity="); ok {
			args = append(args, "--validity", v)
			continue
		}
		args = append(args, "--dns", d)
	}
	signetCLI(t, args...)
	return cert, chain, key
}

func serial(t *testing.T, certFile string) string {
	t.Helper()
	return fmt.Sprintf("%x", parseCert(t, certFile).SerialNumber)
}

func parseCert(t *testing.T, certFile string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM", certFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// modern is what a well-configured OpenSSL server offers: TLS 1.2 with
// forward-secret AEAD suites only, and TLS 1.3.
var modern = []string{"-no_tls1", "-no_tls1_1", "-cipher", "ECDHE+AESGCM:ECDHE+CHACHA20"}

// TestCheckTLS: signet check against openssl s_server on loopback, serving
// certificates of a signet home whose OCSP responder and CRLs serve runs.
func TestCheckTLS(t *testing.T) {
	h := newCheckHome(t)
	goodCert, goodChain, goodKey := h.issue(t, "web", "good", "www.example.org")
	oldCert, oldChain, oldKey := h.issue(t, "web", "old", "old.example.org")
	h.issue(t, "web", "new", "old.example.org", "--validity=1000h") // the renewal: ends later
	revCert, revChain, revKey := h.issue(t, "web", "revoked", "revoked.example.org")
	signetCLI(t, "revoke", serial(t, revCert), "--home", h.home, "--reason", "keyCompromise")
	startServe(t, h.home, "--http-listen", h.httpAddr)

	t.Run("modern", func(t *testing.T) {
		addr := sServer(t, goodCert, goodChain, goodKey, modern...)
		out, code := checkCLI(t, addr, "--name", "www.example.org", "--home", h.home)
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		wantLine(t, out, `^ok +protocol +TLS 1\.3: accepted$`)
		wantLine(t, out, `^ok +chain +trusted by the anchors of home`)
		wantLine(t, out, `^ok +ocsp +http://.*: good$`)
		wantLine(t, out, `^ok +crl +http://.*: not listed$`)
		wantLine(t, out, `^ok +signet +certificate `+serial(t, goodCert)+` was issued by authority "web"$`)
		// Without the home the same server fails: its root is not the system's.
		out, code = checkCLI(t, addr, "--name", "www.example.org")
		if code != 2 {
			t.Errorf("without the home: exit %d, want 2", code)
		}
		wantLine(t, out, `^fail +chain +not trusted by the system's roots`)
		wantLine(t, out, `^info +revocation +not checked: the chain is not trusted, so the URLs it names are not fetched$`)
		// --ca names the roots.
		if _, code = checkCLI(t, addr, "--name", "www.example.org", "--ca", h.root); code != 0 {
			t.Errorf("with --ca: exit %d, want 0", code)
		}
	})

	t.Run("legacy", func(t *testing.T) {
		// OpenSSL 3 speaks TLS 1.0 only at security level 0.
		addr := sServer(t, goodCert, goodChain, goodKey, "-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0")
		out, code := checkCLI(t, addr, "--name", "www.example.org", "--home", h.home)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		wantLine(t, out, `^fail +protocol +TLS 1\.0: accepted`)
		wantLine(t, out, `^warn +suites +TLS 1\.0: weak suites accepted: TLS_RSA_WITH_AES_128_CBC_SHA \(not AEAD, not forward secret\)$`)
		wantLine(t, out, `^info +protocol +SSLv3: not probed`)
	})

	t.Run("DHE only", func(t *testing.T) {
		// Go's TLS client has no DHE: check reads the chain from a
		// handshake of its own.
		addr := sServer(t, goodCert, goodChain, goodKey, "-no_tls1_3", "-cipher", "DHE-RSA-AES256-GCM-SHA384")
		out, code := checkCLI(t, addr, "--name", "www.example.org", "--home", h.home)
		if code != 1 {
			t.Errorf("exit %d, want 1 (no TLS 1.3)", code)
		}
		wantLine(t, out, `^info +chain +read from a TLS 1\.2 handshake of signet's own`)
		wantLine(t, out, `^ok +chain +trusted by the anchors of home`)
		wantLine(t, out, `^ok +ocsp +http://.*: good$`)
		wantLine(t, out, `^warn +protocol +TLS 1\.3: not accepted$`)
	})

	t.Run("wrong name", func(t *testing.T) {
		addr := sServer(t, goodCert, goodChain, goodKey, modern...)
		out, code := checkCLI(t, addr, "--name", "mail.example.org", "--home", h.home)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		wantLine(t, out, `^fail +name +certificate does not name mail\.example\.org \(it names www\.example\.org\)$`)
	})

	t.Run("revoked", func(t *testing.T) {
		addr := sServer(t, revCert, revChain, revKey, modern...)
		out, code := checkCLI(t, addr, "--name", "revoked.example.org", "--home", h.home)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		wantLine(t, out, `^fail +ocsp +http://.*: revoked on .* \(reason 1\)$`)
		wantLine(t, out, `^fail +crl +http://.*: revoked on `)
		wantLine(t, out, `^fail +signet +certificate .* was issued by authority "web" and revoked`)
	})

	t.Run("newer not deployed", func(t *testing.T) {
		addr := sServer(t, oldCert, oldChain, oldKey, modern...)
		out, code := checkCLI(t, addr, "--name", "old.example.org", "--home", h.home)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantLine(t, out, `^warn +signet +signet issued a newer certificate for these names, not deployed here: `+serial(t, filepath.Join(h.dir, "new.pem")))
	})

	t.Run("incomplete chain", func(t *testing.T) {
		addr := sServer(t, goodCert, "", goodKey, modern...)
		out, code := checkCLI(t, addr, "--name", "www.example.org", "--home", h.home)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		wantLine(t, out, `^fail +chain +not trusted by the anchors of home .*, or incomplete`)
	})

	t.Run("expired", func(t *testing.T) {
		ca, cert, key := expiredCertificate(t, h.dir)
		addr := sServer(t, cert, "", key, modern...)
		out, code := checkCLI(t, addr, "--name", "expired.example.org", "--ca", ca)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		wantLine(t, out, `^fail +expiry +CN=expired\.example\.org expired on `)
		wantLine(t, out, `^ok +chain +trusted by `)
	})

	t.Run("json", func(t *testing.T) {
		addr := sServer(t, goodCert, goodChain, goodKey, modern...)
		out, code := checkCLI(t, addr, "--name", "www.example.org", "--home", h.home, "--json")
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		for _, want := range []string{`"verdict": "ok"`, `"serial": "` + serial(t, goodCert) + `"`, `"check": "ocsp"`} {
			if !strings.Contains(out, want) {
				t.Errorf("JSON lacks %s:\n%s", want, out)
			}
		}
	})

	t.Run("no home at --home", func(t *testing.T) {
		out, code := checkCLI(t, "127.0.0.1:1", "--home", filepath.Join(h.dir, "nothing"))
		if code != 2 || !strings.Contains(out, "holds no signet home") {
			t.Errorf("exit %d, %q; want 2 and the missing home named", code, out)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		out, code := checkCLI(t, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		wantLine(t, out, `^fail +connect +cannot connect to 127\.0\.0\.1:`)
	})
}

// expiredCertificate writes a CA (ca.pem) and a leaf for
// expired.example.org that expired yesterday, with its key.
func expiredCertificate(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Expired Test CA"},
		NotBefore: now.Add(-60 * 24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "expired.example.org"},
		DNSNames:  []string{"expired.example.org"},
		NotBefore: now.Add(-30 * 24 * time.Hour), NotAfter: now.Add(-24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	ca, cert, key = filepath.Join(dir, "expired-ca.pem"), filepath.Join(dir, "expired.pem"), filepath.Join(dir, "expired.key")
	for path, blk := range map[string]*pem.Block{ca: {Type: "CERTIFICATE", Bytes: caDER}, cert: {Type: "CERTIFICATE", Bytes: leafDER}, key: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// TestCheckRecord: --record keeps each endpoint's latest result in the
// home, which signet show and serve's metrics report; --all checks every
// recorded endpoint again and records it, its exit status the worst
// verdict.
func TestCheckRecord(t *testing.T) {
	h := newCheckHome(t)
	goodCert, goodChain, goodKey := h.issue(t, "web", "good", "www.example.org")
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startServe(t, h.home, "--http-listen", h.httpAddr, "--metrics-listen", maddr)
	good := sServer(t, goodCert, goodChain, goodKey, modern...)
	legacy := sServer(t, goodCert, goodChain, goodKey, "-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0")

	if out, code := checkCLI(t, "--all", "--home", h.home); code != 0 || !strings.Contains(out, "no endpoint recorded") {
		t.Errorf("--all with nothing recorded: exit %d, %q", code, out)
	}
	if _, code := checkCLI(t, good, "--name", "www.example.org", "--home", h.home, "--record"); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if _, code := checkCLI(t, legacy, "--name", "www.example.org", "--home", h.home, "--record"); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	out, code := checkCLI(t, "--all", "--home", h.home)
	if code != 2 {
		t.Errorf("--all: exit %d, want 2 (the legacy endpoint fails)", code)
	}
	wantLine(t, out, `^ok +verdict +`+regexp.QuoteMeta(good)+`$`)
	wantLine(t, out, `^fail +verdict +`+regexp.QuoteMeta(legacy)+`$`)
	wantLine(t, out, `^ok +signet +certificate `+serial(t, goodCert)+` was issued`)

	// Both endpoints serve the certificate: show says where.
	shown := signetCLI(t, "show", serial(t, goodCert), "--home", h.home)
	wantLine(t, shown, `^deployed: +`+regexp.QuoteMeta(good)+` as www\.example\.org, check ok at `)
	wantLine(t, shown, `^deployed: +`+regexp.QuoteMeta(legacy)+` as www\.example\.org, check fail at `)
	if j := signetCLI(t, "show", serial(t, goodCert), "--home", h.home, "--json"); !strings.Contains(j, `"endpoint": "`+good+`"`) {
		t.Errorf("show --json lacks the endpoint %s:\n%s", good, j)
	}
	listed := signetCLI(t, "list", "--deployed", "--home", h.home)
	wantLine(t, listed, `^`+serial(t, goodCert)+` .*www\.example\.org +(`+regexp.QuoteMeta(good)+` \(ok\),`+regexp.QuoteMeta(legacy)+` \(fail\)|`+regexp.QuoteMeta(legacy)+` \(fail\),`+regexp.QuoteMeta(good)+` \(ok\))$`)
	if j := signetCLI(t, "list", "--json", "--home", h.home); !strings.Contains(j, `"endpoint": "`+legacy+`"`) {
		t.Errorf("list --json lacks the endpoint %s:\n%s", legacy, j)
	}

	// serve exports a gauge per recorded endpoint.
	fams := scrape(t, maddr)
	for _, e := range []struct{ addr, verdict string }{{good, "ok"}, {legacy, "fail"}} {
		for _, v := range []string{"ok", "warn", "fail"} {
			want := 0.0
			if v == e.verdict {
				want = 1
			}
			if got := value(fams, "signet_endpoint_verdict", map[string]string{"endpoint": e.addr, "verdict": v}); got != want {
				t.Errorf("signet_endpoint_verdict{endpoint=%q,verdict=%q} = %v, want %v", e.addr, v, got, want)
			}
		}
	}
	leaf := parseCert(t, goodCert)
	if got := value(fams, "signet_endpoint_certificate_not_after_timestamp_seconds", map[string]string{"endpoint": good, "name": "www.example.org"}); got != float64(leaf.NotAfter.Unix()) {
		t.Errorf("signet_endpoint_certificate_not_after_timestamp_seconds of %s = %v, want %d", good, got, leaf.NotAfter.Unix())
	}

	if _, code := checkCLI(t, good, "--all", "--home", h.home); code != 2 { // a usage error
		t.Errorf("--all with an endpoint: exit %d, want 2 (usage)", code)
	}
}
