package main

import (
	"bytes"
	"context"
	"crypto"
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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"signet/internal/kms/kmstest"
)

// TestACMEClientPebble: the client flow of TestACMEClientTokenKeys against
// Pebble (Debian's), an ACME server no one here wrote, run on loopback with
// its real validation (no PEBBLE_VA_ALWAYS_VALID), resolving through the
// test's DNS server; PEBBLE_VA_NOSLEEP=1 only skips its random delay.
// Revocation is checked with Pebble's management API.
func TestACMEClientPebble(t *testing.T) {
	pebble := kmstest.RequireTool(t, "pebble")
	kmstest.RequireTool(t, "openssl")
	work, module, pin, txtDir, hook := clientWork(t)
	resolver := startDNSTXT(t, txtDir)

	// Pebble's HTTPS certificate, for 127.0.0.1.
	pdir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(pdir, "cert.pem"), filepath.Join(pdir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)

	listen, mgmt := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	httpPort, tlsPort := freePort(t), freePort(t)
	conf, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt, "certificate": certFile, "privateKey": keyFile,
		"httpPort": httpPort, "tlsPort": tlsPort, "ocspResponderURL": "", "externalAccountBindingRequired": false,
	}})
	confFile := filepath.Join(pdir, "pebble.json")
	os.WriteFile(confFile, conf, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, pebble, "-config", confFile, "-dnsserver", resolver)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })

	pool := x509.NewCertPool()
	pool.AddCert(tmpl)
	parsed, _ := x509.ParseCertificate(der)
	pool.AddCert(parsed)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(url string) (string, int) {
		resp, err := hc.Get(url)
		if err != nil {
			return err.Error(), 0
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.StatusCode
	}
	directory := "https://" + listen + "/dir"
	for i := 0; ; i++ {
		if _, code := get(directory); code == http.StatusOK {
			break
		}
		if i == 100 {
			t.Fatalf("pebble did not start:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	root, code := get("https://" + mgmt + "/roots/0")
	if code != http.StatusOK {
		t.Fatalf("pebble root: %d %s", code, root)
	}
	rootFile := filepath.Join(pdir, "root.pem")
	os.WriteFile(rootFile, []byte(root), 0o644)

	defer func() {
		if t.Failed() {
			t.Logf("pebble:\n%s", logs.String())
		}
	}()
	clientFlow(t, work, module, pin, txtDir, hook, acmeTarget{
		directory: directory, caBundle: certFile, httpPort: httpPort, tlsPort: tlsPort,
		verify: func(cert, chain string) {
			if out := tool(t, nil, "openssl", "verify", "-CAfile", rootFile, "-untrusted", chain, cert); !strings.Contains(out, ": OK") {
				t.Fatalf("openssl verify: %s", out)
			}
		},
		revoked: func(cert string) bool {
			body, code := get("https://" + mgmt + "/cert-status-by-serial/" + serialOf(t, cert))
			if code != http.StatusOK {
				t.Fatalf("pebble cert status: %d %s", code, body)
			}
			return strings.Contains(body, `"Revoked"`)
		},
	})

	// signet agent against Pebble, which has no renewal information: the
	// agent renews at two thirds of the lifetime, here of a certificate the
	// test backdates, and runs the reload command once.
	bundle := filepath.Join(pdir, "bundle.pem")
	os.WriteFile(bundle, append(append([]byte{}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...), root...), 0o644)
	reloads := filepath.Join(work, "pebble-reloads")
	reload := filepath.Join(work, "pebble-reload")
	os.WriteFile(reload, []byte("#!/bin/sh\necho reloaded >> "+reloads+"\n"), 0o700)
	agentConf := filepath.Join(work, "pebble-agent.toml")
	os.WriteFile(agentConf, []byte(fmt.Sprintf(`server = %q
ca_bundle = %q
account_key = "pkcs11:token=acct;object=pebble-agent"

[tokens.acct]
module = %q
pin = "env:SIGNET_TEST_PIN"

[[certificate]]
name = "web"
dns = ["agent.pebble.test"]
http_01 = "standalone:%d"
fullchain_file = "pebble-web.pem"
key_file = "pebble-web.key"
reload = [%q]
`, directory, bundle, module, httpPort, reload)), 0o600)
	signetCLI(t, "key", "generate", "--uri", "pkcs11:token=acct;object=pebble-agent", "--type", "ecdsa-p256", "--module", module, "--pin", "env:SIGNET_TEST_PIN")
	state := filepath.Join(work, "pebble-state")
	signetCLI(t, "agent", "--config", agentConf, "--state", state, "--once")
	if out := signetCLI(t, "agent", "status", "--config", agentConf, "--state", state); !strings.Contains(out, "(two thirds of the lifetime)") {
		t.Fatalf("agent status against a server without renewal information:\n%s", out)
	}
	if out := signetCLI(t, "agent", "--config", agentConf, "--state", state, "--once"); !strings.Contains(out, "web: not due") {
		t.Fatalf("a fresh certificate renewed:\n%s", out)
	}
	webKey, err := os.ReadFile(filepath.Join(work, "pebble-web.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(webKey)
	priv, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	signer := priv.(crypto.Signer)
	old := &x509.Certificate{SerialNumber: big.NewInt(9), DNSNames: []string{"agent.pebble.test"}, NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(time.Hour)}
	oldDER, err := x509.CreateCertificate(rand.Reader, old, old, signer.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	oldPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: oldDER})
	os.WriteFile(filepath.Join(work, "pebble-web.pem"), oldPEM, 0o644)
	signetCLI(t, "agent", "--config", agentConf, "--state", state, "--once")
	if prev, _ := os.ReadFile(filepath.Join(work, "pebble-web.pem.prev")); !bytes.Equal(prev, oldPEM) {
		t.Fatal("the renewed certificate is not kept as .prev")
	}
	if out := tool(t, nil, "openssl", "verify", "-CAfile", rootFile, "-untrusted", filepath.Join(work, "pebble-web.pem"), filepath.Join(work, "pebble-web.pem")); !strings.Contains(out, ": OK") {
		t.Fatalf("openssl verify of the renewed certificate: %s", out)
	}
	if got, _ := os.ReadFile(reloads); string(got) != "reloaded\nreloaded\n" {
		t.Fatalf("reload ran %q, want once per certificate obtained", got)
	}
}
