package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"signet/internal/kms/kmstest"
)

// readCert parses the first certificate of a PEM file.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tokenPublicKey reads a key's public key from the token with pkcs11-tool,
// DER SubjectPublicKeyInfo, and checks pkcs11-tool shows the private key
// sensitive and never extractable.
func tokenPublicKey(t *testing.T, module, pin, token, label string) []byte {
	t.Helper()
	objects := tool(t, nil, "pkcs11-tool", "--module", module, "--token-label", token, "--login", "--pin", pin, "--list-objects", "--type", "privkey")
	m := regexp.MustCompile(`Private Key Object;[^\n]*\n\s+label:\s+` + regexp.QuoteMeta(label) + `\n(?:\s+[^\n]*\n)*?\s+Access:\s+([^\n]*)`).FindStringSubmatch(objects)
	if m == nil || !strings.Contains(m[1], "sensitive") || !strings.Contains(m[1], "never extractable") || strings.Contains(m[1], ", extractable") {
		t.Fatalf("pkcs11-tool does not show %s sensitive and never extractable:\n%s", label, objects)
	}
	out := filepath.Join(t.TempDir(), label+".der")
	tool(t, nil, "pkcs11-tool", "--module", module, "--token-label", token, "--read-object", "--type", "pubkey", "--label", label, "-o", out)
	der, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// acmeTarget is an ACME server the client tests run against.
type acmeTarget struct {
	directory, caBundle string
	httpPort, tlsPort   int
	verify              func(cert, chain string) // checks the chain
	revoked             func(cert string) bool   // asks the server
}

// clientWork sets up SoftHSM2 tokens "acct" and "certs", no signet home,
// and a dns-01 exec hook writing the records into txtDir.
func clientWork(t *testing.T) (work, module, pin, txtDir, hook string) {
	kmstest.RequireTool(t, "pkcs11-tool")
	module, pin = kmstest.SoftHSM(t, "acct")
	util := kmstest.RequireTool(t, "softhsm2-util")
	tool(t, nil, util, "--init-token", "--free", "--label", "certs", "--pin", pin, "--so-pin", kmstest.SOPIN)
	work = t.TempDir()
	t.Setenv("HOME", filepath.Join(work, "user"))
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("SIGNET_HOME", "")
	t.Setenv("SIGNET_TEST_PIN", pin)
	txtDir = filepath.Join(work, "txt")
	if err := os.Mkdir(txtDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// lego's exec protocol: CMD present|cleanup FQDN VALUE; this one keeps
	// the records where the test's DNS server reads them.
	hook = filepath.Join(work, "dns-hook")
	script := "#!/bin/sh\nset -e\ncase \"$1\" in\npresent) echo \"$3\" >> " + txtDir + "/\"$2\" ;;\ncleanup) rm -f " + txtDir + "/\"$2\" ;;\n*) exit 2 ;;\nesac\n"
	if err := os.WriteFile(hook, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return work, module, pin, txtDir, hook
}

// TestACMEClientTokenKeys: signet acme certonly, with the account key and
// the certificate key on SoftHSM2 tokens (two tokens) and no signet home,
// obtains certificates from `signet serve` over http-01, tls-alpn-01 and
// dns-01 (exec hook, the server resolving through the test's DNS server);
// the certificate's public key is the token key, which pkcs11-tool shows
// sensitive and never extractable. The account key rolls over to a new
// token key, the new key revokes the certificate (signet show says
// revoked), and the account is deactivated.
func TestACMEClientTokenKeys(t *testing.T) {
	work, module, pin, txtDir, hook := clientWork(t)
	dir, directory, httpPort, tlsPort := acmeServePorts(t, startDNSTXT(t, txtDir))
	clientFlow(t, work, module, pin, txtDir, hook, acmeTarget{
		directory: directory, caBundle: filepath.Join(dir, "root.pem"), httpPort: httpPort, tlsPort: tlsPort,
		verify:  func(cert, chain string) { opensslVerify(t, dir, cert, chain) },
		revoked: func(cert string) bool { return revoked(t, dir, serialOf(t, cert)) },
	})
}

func clientFlow(t *testing.T, work, module, pin, txtDir, hook string, srv acmeTarget) {
	tokenFlags := []string{"--module", module, "--pin", "env:SIGNET_TEST_PIN"}
	client := append([]string{"--server", srv.directory, "--ca-bundle", srv.caBundle}, tokenFlags...)
	account := "pkcs11:token=acct;object=account"
	signetCLI(t, append([]string{"key", "generate", "--uri", account, "--type", "ecdsa-p256"}, tokenFlags...)...)
	httpPort, tlsPort := srv.httpPort, srv.tlsPort
	for i, c := range []struct {
		name, object string
		solve        []string
	}{
		{"http.signet.test", "web-http", []string{"--http-01", "standalone:" + strconv.Itoa(httpPort)}},
		{"alpn.signet.test", "web-alpn", []string{"--tls-alpn-01", strconv.Itoa(tlsPort)}},
		{"dns.signet.test", "web-dns", []string{"--dns-01", "exec:" + hook}},
	} {
		out := filepath.Join(work, c.object)
		keyFlag := []string{"--key-on-token", "pkcs11:token=certs;object=" + c.object}
		if i == 1 { // a key made beforehand, named with --key
			signetCLI(t, append([]string{"key", "generate", "--uri", "pkcs11:token=certs;object=" + c.object, "--type", "rsa-2048"}, tokenFlags...)...)
			keyFlag = []string{"--key", "pkcs11:token=certs;object=" + c.object}
		}
		signetCLI(t, append(append(append([]string{"acme", "certonly", "--account-key", account, "--dns", c.name, "--out", out}, keyFlag...), c.solve...), client...)...)
		srv.verify(filepath.Join(out, "cert.pem"), filepath.Join(out, "chain.pem"))
		srv.verify(filepath.Join(out, "fullchain.pem"), filepath.Join(out, "chain.pem"))
		cert := readCert(t, filepath.Join(out, "cert.pem"))
		spki, err := x509.MarshalPKIXPublicKey(cert.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if string(spki) != string(tokenPublicKey(t, module, pin, "certs", c.object)) {
			t.Fatalf("%s: the certificate's public key is not the token key %s", c.name, c.object)
		}
		if len(cert.DNSNames) != 1 || cert.DNSNames[0] != c.name {
			t.Fatalf("certificate names %v, want %s", cert.DNSNames, c.name)
		}
		if _, err := os.Stat(filepath.Join(out, "privkey.pem")); err == nil {
			t.Fatalf("privkey.pem written for a token key")
		}
	}
	tokenPublicKey(t, module, pin, "acct", "account")
	if left, _ := os.ReadDir(txtDir); len(left) != 0 {
		t.Fatalf("the dns-01 records were not cleaned up: %v", left)
	}

	newAccount := "pkcs11:token=acct;object=account2"
	signetCLI(t, append([]string{"key", "generate", "--uri", newAccount, "--type", "ecdsa-p256"}, tokenFlags...)...)
	signetCLI(t, append([]string{"acme", "account", "rollover", "--account-key", account, "--new-account-key", newAccount}, client...)...)
	tokenPublicKey(t, module, pin, "acct", "account2")
	cert := filepath.Join(work, "web-http", "cert.pem")
	var o, e lockedBuffer
	if code := run(t.Context(), append([]string{"acme", "revoke", "--account-key", account, cert}, client...), nil, &o, &e); code == 0 {
		t.Fatalf("the rolled-over key still revokes: %s", o.String())
	}
	signetCLI(t, append([]string{"acme", "revoke", "--account-key", newAccount, "--reason", "4", cert}, client...)...)
	if !srv.revoked(cert) {
		t.Fatalf("signet show does not say %s revoked", cert)
	}
	if srv.revoked(filepath.Join(work, "web-alpn", "cert.pem")) {
		t.Fatalf("revoking one certificate revoked the other")
	}
	signetCLI(t, append([]string{"acme", "account", "deactivate", "--account-key", newAccount}, client...)...)
	o, e = lockedBuffer{}, lockedBuffer{}
	if code := run(t.Context(), append([]string{"acme", "certonly", "--account-key", newAccount, "--dns", "late.signet.test", "--out", filepath.Join(work, "late"),
		"--key-on-token", "pkcs11:token=certs;object=late", "--http-01", "standalone:" + strconv.Itoa(httpPort)}, client...), nil, &o, &e); code == 0 {
		t.Fatalf("a deactivated account got a certificate")
	}
}

// TestACMEClientFileKeys: with no token, against a signet server that
// requires external account binding: the account key is generated as an
// encrypted file, EAB binds it, --profile shortlived is honoured; --clear-key
// writes privkey.pem 0600 and certificates 0644; the default key is an
// encrypted file; --webroot writes the challenge where a web server of the
// test serves it, and removes it. Bad input gets a one-sentence error and
// writes nothing.
func TestACMEClientFileKeys(t *testing.T) {
	kmstest.RequireTool(t, "openssl")
	work := t.TempDir()
	t.Setenv("HOME", filepath.Join(work, "user"))
	t.Setenv("XDG_DATA_HOME", "")
	dir, directory, httpPort := acmeServe(t, func(dir string) {
		signetCLI(t, "authority", "set", "default", "--require-eab=true", "--home", dir)
	})
	t.Setenv("SIGNET_HOME", "")
	var eab map[string]string
	if err := json.Unmarshal([]byte(signetCLI(t, "acme", "eab", "create", "--authority", "default", "--json", "--home", dir)), &eab); err != nil {
		t.Fatal(err)
	}
	hmacFile := filepath.Join(work, "eab.hmac")
	os.WriteFile(hmacFile, []byte(eab["hmac_key"]+"\n"), 0o600)
	t.Setenv("SIGNET_TEST_PASS", "a passphrase long enough")
	account := "file:" + filepath.Join(work, "account.key")
	client := []string{"--server", directory, "--ca-bundle", filepath.Join(dir, "root.pem"), "--account-key", account,
		"--passphrase", "env:SIGNET_TEST_PASS", "--http-01", "standalone:" + strconv.Itoa(httpPort)}

	fails := func(want string, args ...string) {
		t.Helper()
		var o, e lockedBuffer
		if code := run(t.Context(), args, nil, &o, &e); code == 0 || !strings.Contains(e.String(), want) {
			t.Fatalf("signet %s: exit %d, want an error saying %q:\n%s", strings.Join(args, " "), code, want, e.String())
		}
	}
	clear := filepath.Join(work, "clear")
	fails("external account", append([]string{"acme", "certonly", "--dns", "noeab.signet.test", "--out", clear, "--clear-key"}, client...)...)
	fails("give one way to answer challenges", "acme", "certonly", "--server", directory, "--account-key", account, "--dns", "x.signet.test", "--out", clear)
	fails("--ip \"nope\" is not an IP address", append([]string{"acme", "certonly", "--ip", "nope", "--out", clear}, client...)...)
	if _, err := os.Stat(filepath.Join(clear, "cert.pem")); err == nil {
		t.Fatal("a refused certonly wrote cert.pem")
	}

	eabFlags := []string{"--eab-kid", eab["kid"], "--eab-hmac", "file:" + hmacFile}
	signetCLI(t, append(append([]string{"acme", "certonly", "--dns", "clear.signet.test", "--out", clear, "--clear-key", "--profile", "shortlived"}, eabFlags...), client...)...)
	for name, mode := range map[string]os.FileMode{"privkey.pem": 0o600, "cert.pem": 0o644, "chain.pem": 0o644, "fullchain.pem": 0o644} {
		st, err := os.Stat(filepath.Join(clear, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, mode %v, want %v", name, err, st, mode)
		}
	}
	opensslVerify(t, dir, filepath.Join(clear, "cert.pem"), filepath.Join(clear, "chain.pem"))
	key := tool(t, nil, "openssl", "pkey", "-in", filepath.Join(clear, "privkey.pem"), "-pubout")
	if cert := tool(t, nil, "openssl", "x509", "-in", filepath.Join(clear, "cert.pem"), "-noout", "-pubkey"); cert != key {
		t.Fatalf("privkey.pem is not the certificate's key")
	}
	if c := readCert(t, filepath.Join(clear, "cert.pem")); c.NotAfter.Sub(c.NotBefore) > 10*24*time.Hour {
		t.Fatalf("--profile shortlived gave a certificate valid %v", c.NotAfter.Sub(c.NotBefore))
	}

	// The account exists now: no EAB needed; the key is an encrypted file.
	enc := filepath.Join(work, "enc")
	signetCLI(t, append([]string{"acme", "certonly", "--dns", "enc.signet.test", "--out", enc}, client...)...)
	if _, err := os.Stat(filepath.Join(enc, "privkey.pem")); err == nil {
		t.Fatal("privkey.pem written without --clear-key")
	}
	data, err := os.ReadFile(filepath.Join(enc, "privkey.key"))
	if err != nil || !strings.Contains(string(data), "ENCRYPTED PRIVATE KEY") {
		t.Fatalf("the generated key is not an encrypted file: %v\n%s", err, data)
	}
	if acct, _ := os.ReadFile(filepath.Join(work, "account.key")); !strings.Contains(string(acct), "ENCRYPTED PRIVATE KEY") {
		t.Fatalf("the account key is not encrypted:\n%s", acct)
	}

	// Renewing the same name with the same account reuses its valid
	// authorization ([acme] authorization_reuse, 7 days by default): no
	// challenge is answered, and none could be (nothing listens on the
	// http-01 port yet).
	renewed := filepath.Join(work, "renewed")
	signetCLI(t, append([]string{"acme", "certonly", "--dns", "enc.signet.test", "--out", renewed, "--webroot", filepath.Join(work, "nobody")}, client[:len(client)-2]...)...)
	opensslVerify(t, dir, filepath.Join(renewed, "cert.pem"), filepath.Join(renewed, "chain.pem"))

	// No --account-key: an encrypted key per server, generated under
	// ~/.local/share/signet-client/accounts.
	noAcct := []string{"acme", "certonly", "--server", directory, "--ca-bundle", filepath.Join(dir, "root.pem"), "--passphrase", "env:SIGNET_TEST_PASS",
		"--http-01", "standalone:" + strconv.Itoa(httpPort), "--dns", "default-account.signet.test", "--out", filepath.Join(work, "defacct")}
	var eab2 map[string]string
	if err := json.Unmarshal([]byte(signetCLI(t, "acme", "eab", "create", "--authority", "default", "--json", "--home", dir)), &eab2); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIGNET_TEST_EAB", eab2["hmac_key"])
	signetCLI(t, append(noAcct, "--eab-kid", eab2["kid"], "--eab-hmac", "env:SIGNET_TEST_EAB")...)
	u, _ := url.Parse(directory)
	def := filepath.Join(work, "user", ".local", "share", "signet-client", "accounts", strings.ReplaceAll(u.Host, ":", "_"), "account.key")
	if acct, err := os.ReadFile(def); err != nil || !strings.Contains(string(acct), "ENCRYPTED PRIVATE KEY") {
		t.Fatalf("the default account key %s is not an encrypted file: %v", def, err)
	}
	signetCLI(t, noAcct...) // the same account again, no EAB needed

	// --webroot: a web server of the test's serves the directory.
	webroot := filepath.Join(work, "www")
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(httpPort))
	if err != nil {
		t.Fatal(err)
	}
	web := &http.Server{Handler: http.FileServer(http.Dir(webroot)), ReadHeaderTimeout: 10 * time.Second}
	go web.Serve(ln)
	defer web.Close()
	wr := filepath.Join(work, "webroot")
	signetCLI(t, append([]string{"acme", "certonly", "--dns", "webroot.signet.test", "--out", wr, "--webroot", webroot}, client[:len(client)-2]...)...)
	opensslVerify(t, dir, filepath.Join(wr, "cert.pem"), filepath.Join(wr, "chain.pem"))
	if left, _ := os.ReadDir(filepath.Join(webroot, ".well-known", "acme-challenge")); len(left) != 0 {
		t.Fatalf("--webroot left challenge files: %v", left)
	}
}
