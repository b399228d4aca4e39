package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// forwarder is a TCP relay to the ACME server the test can take down and
// bring back up, closing the connections it carries when it goes down.
type forwarder struct {
	addr, backend string
	mu            sync.Mutex
	ln            net.Listener
	conns         []net.Conn
}

func (f *forwarder) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", f.backend)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, b)
			f.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
}

func (f *forwarder) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ln.Close()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

type agentState struct {
	Certificates map[string]struct {
		Serial   string `json:"serial"`
		Failures int    `json:"failures"`
		ARI      bool   `json:"ari"`
	} `json:"certificates"`
}

func readAgentState(t *testing.T, dir string) agentState {
	t.Helper()
	var s agentState
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err == nil {
		err = json.Unmarshal(data, &s)
	}
	if err != nil {
		t.Fatalf("agent state: %v", err)
	}
	return s
}

// TestAgent: signet agent against signet serve keeps two certificates, one
// with a new clear key per renewal (installed with its mode), one whose key
// is on a SoftHSM2 token like the account key; [tokens] in the client
// configuration opens both tokens (no --module/--pin). Only a due
// certificate renews and its reload command runs once: a revoked
// certificate is due by the server's renewal information and is renewed
// with replaces naming it; a certificate the server cannot be asked about
// renews at two thirds of its lifetime. With the server down the renewal is
// retried and the working certificate stays in place; once the server is
// back the renewal succeeds and the previous set is kept as .prev. A
// configuration or state directory others may write, and a prompt PIN
// source, are refused.
func TestAgent(t *testing.T) {
	work, module, pin, txtDir, _ := clientWork(t)
	dir, directory, httpPort, _ := acmeServePorts(t, startDNSTXT(t, txtDir))
	u, err := url.Parse(directory)
	if err != nil {
		t.Fatal(err)
	}
	fwd := &forwarder{addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), backend: u.Host}
	fwd.up(t)
	t.Cleanup(fwd.down)
	server := strings.Replace(directory, u.Host, fwd.addr, 1)

	tokenFlags := []string{"--module", module, "--pin", "env:SIGNET_TEST_PIN"}
	signetCLI(t, append([]string{"key", "generate", "--uri", "pkcs11:token=acct;object=agent-account", "--type", "ecdsa-p256"}, tokenFlags...)...)
	signetCLI(t, append([]string{"key", "generate", "--uri", "pkcs11:token=certs;object=agent-tok", "--type", "ecdsa-p256"}, tokenFlags...)...)

	reloads := filepath.Join(work, "reloads")
	hook := filepath.Join(work, "reload")
	os.WriteFile(hook, []byte("#!/bin/sh\necho \"$1\" >> "+reloads+"\n"), 0o700)
	for _, d := range []string{"web", "tok"} {
		os.Mkdir(filepath.Join(work, d), 0o755)
	}
	// Installed files get an owner and group: nobody's when the test can
	// give them away, else the test's own.
	owner, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		if owner, err = user.Lookup("nobody"); err != nil {
			t.Skip("no user nobody")
		}
	}
	group, err := user.LookupGroupId(owner.Gid)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(work, "agent.toml")
	body := fmt.Sprintf(`server = %q
ca_bundle = %q
account_key = "pkcs11:token=acct;object=agent-account"
retry_backoff = "100ms"

[tokens.acct]
module = %q
pin = "env:SIGNET_TEST_PIN"

[tokens.certs]
module = %q
pin = "env:SIGNET_TEST_PIN"

[[certificate]]
name = "web"
dns = ["web.signet.test"]
http_01 = "standalone:%d"
cert_file = "web/cert.pem"
chain_file = "web/chain.pem"
key_file = "web/key.pem"
mode = "0640"
owner = %q
group = %q
reload = [%q, "web"]

[[certificate]]
name = "tok"
dns = ["tok.signet.test"]
key = "pkcs11:token=certs;object=agent-tok"
http_01 = "standalone:%d"
fullchain_file = "tok/fullchain.pem"
reload = [%q, "tok"]
`, server, filepath.Join(dir, "root.pem"), module, module, httpPort, owner.Username, group.Name, hook, httpPort, hook)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(work, "state")
	agentArgs := []string{"agent", "--config", conf, "--state", state}
	fails := func(want string, args ...string) {
		t.Helper()
		var o, e lockedBuffer
		if code := run(t.Context(), args, nil, &o, &e); code == 0 || !strings.Contains(e.String(), want) {
			t.Fatalf("signet %s: exit %d, want an error saying %q:\n%s%s", strings.Join(args, " "), code, want, o.String(), e.String())
		}
	}
	reloaded := func() string {
		data, _ := os.ReadFile(reloads)
		return string(data)
	}

	// Refusals: nothing is obtained.
	os.Chmod(conf, 0o620)
	fails("writable by group or others", append(agentArgs, "--once")...)
	os.Chmod(conf, 0o600)
	os.Mkdir(state, 0o777)
	os.Chmod(state, 0o777)
	fails("writable by group or others", append(agentArgs, "--once")...)
	os.Chmod(state, 0o700)
	prompt := filepath.Join(work, "prompt.toml")
	os.WriteFile(prompt, []byte(strings.Replace(body, `pin = "env:SIGNET_TEST_PIN"`, `pin = "prompt"`, 1)), 0o600)
	fails("cannot ask for secrets", "agent", "--config", prompt, "--state", state, "--once")
	// Another agent renewing with the same state directory: refused.
	lock, err := os.OpenFile(filepath.Join(state, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	fails("another signet agent is renewing", append(agentArgs, "--once")...)
	lock.Close()
	if reloaded() != "" {
		t.Fatalf("a refused agent ran the reload command")
	}

	// First run: both are due (none installed).
	signetCLI(t, append(agentArgs, "--once")...)
	if got := reloaded(); got != "web\ntok\n" {
		t.Fatalf("reloads after the first run: %q", got)
	}
	web, tok := filepath.Join(work, "web", "cert.pem"), filepath.Join(work, "tok", "fullchain.pem")
	opensslVerify(t, dir, web, filepath.Join(work, "web", "chain.pem"))
	for name, mode := range map[string]os.FileMode{"web/cert.pem": 0o640, "web/chain.pem": 0o640, "web/key.pem": 0o600} {
		st, err := os.Stat(filepath.Join(work, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, want mode %v", name, err, mode)
		}
		if sys := st.Sys().(*syscall.Stat_t); strconv.Itoa(int(sys.Uid)) != owner.Uid || strconv.Itoa(int(sys.Gid)) != group.Gid {
			t.Fatalf("%s: owner %d:%d, want %s:%s", name, sys.Uid, sys.Gid, owner.Uid, group.Gid)
		}
	}
	key := tool(t, nil, "openssl", "pkey", "-in", filepath.Join(work, "web", "key.pem"), "-pubout")
	if got := tool(t, nil, "openssl", "x509", "-in", web, "-noout", "-pubkey"); got != key {
		t.Fatalf("web/key.pem is not the key of web/cert.pem")
	}
	spki, _ := x509.MarshalPKIXPublicKey(readCert(t, tok).PublicKey)
	if !bytes.Equal(spki, tokenPublicKey(t, module, pin, "certs", "agent-tok")) {
		t.Fatalf("tok's certificate is not for the token key")
	}
	if st, err := os.Stat(filepath.Join(state, "state.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state.json: %v, want mode 0600", err)
	}
	var status []map[string]any
	if err := json.Unmarshal([]byte(signetCLI(t, "agent", "status", "--config", conf, "--state", state, "--json")), &status); err != nil || len(status) != 2 {
		t.Fatalf("agent status --json: %v %v", err, status)
	}
	for _, s := range status {
		if s["not_after"] == nil || s["next_renewal"] == nil || s["serial"] == nil {
			t.Fatalf("agent status lacks expiry or next renewal: %v", s)
		}
	}

	// Second run: nothing is due.
	out := signetCLI(t, append(agentArgs, "--once")...)
	if strings.Count(out, "not due") != 2 || reloaded() != "web\ntok\n" {
		t.Fatalf("a run with nothing due renewed:\n%s\nreloads %q", out, reloaded())
	}
	if out := signetCLI(t, "agent", "status", "--config", conf, "--state", state); strings.Count(out, "(server's renewal information)") != 2 || !strings.Contains(out, "tok\ttok.signet.test\tserial ") {
		t.Fatalf("agent status after the server was asked:\n%s", out)
	}

	// Revoked: the server's renewal information makes tok due; the order
	// replaces it. The account key comes from --config and its [tokens].
	webSerial, tokSerial := serialOf(t, web), serialOf(t, tok)
	signetCLI(t, "acme", "revoke", "--config", conf, tok)
	stateBefore, _ := os.ReadFile(filepath.Join(state, "state.json"))
	out = signetCLI(t, append(agentArgs, "--dry-run")...)
	if !strings.Contains(out, "tok: due; would renew (dry run)") || !strings.Contains(out, "web: not due") || serialOf(t, tok) != tokSerial {
		t.Fatalf("--dry-run after revoking tok:\n%s", out)
	}
	if after, _ := os.ReadFile(filepath.Join(state, "state.json")); !bytes.Equal(after, stateBefore) || reloaded() != "web\ntok\n" {
		t.Fatalf("--dry-run changed the state or reloaded")
	}
	out = signetCLI(t, append(agentArgs, "--once")...)
	if got := reloaded(); got != "web\ntok\ntok\n" {
		t.Fatalf("reloads after tok was revoked: %q\n%s", got, out)
	}
	if serialOf(t, web) != webSerial || serialOf(t, tok) == tokSerial || serialOf(t, tok+".prev") != tokSerial {
		t.Fatalf("want only tok renewed, its previous certificate kept as .prev:\n%s", out)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "signet.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var replaced int
	if err := db.QueryRow(`SELECT count(*) FROM acme_orders WHERE replaces = ?`, strings.TrimLeft(tokSerial, "0")).Scan(&replaced); err != nil || replaced != 1 {
		t.Fatalf("orders replacing %s: %d, %v", tokSerial, replaced, err)
	}

	// The replaced certificate put back: the server refuses a second order
	// replacing it, and the agent orders without replaces.
	tokNew, _ := os.ReadFile(tok)
	prev, _ := os.ReadFile(tok + ".prev")
	os.WriteFile(tok, prev, 0o644)
	out = signetCLI(t, append(agentArgs, "--once")...)
	if !strings.Contains(out, "ordering without replaces") || reloaded() != "web\ntok\ntok\ntok\n" {
		t.Fatalf("a certificate replaced already was not renewed without replaces:\n%s", out)
	}
	if now, _ := os.ReadFile(tok); bytes.Equal(now, tokNew) || bytes.Equal(now, prev) {
		t.Fatalf("tok was not renewed")
	}

	// The server down: web's installed certificate (one the test made,
	// past two thirds of its life, unknown to the server) is due; the
	// agent retries and leaves it in place until the server is back.
	fwd.down()
	keyPEM, err := os.ReadFile(filepath.Join(work, "web", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(keyPEM)
	priv, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	signer := priv.(crypto.Signer)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "web.signet.test"}, DNSNames: []string{"web.signet.test"},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	working := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	os.WriteFile(web, working, 0o640)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var dout, derr lockedBuffer
	done := make(chan int)
	go func() { done <- run(ctx, agentArgs, nil, &dout, &derr) }()
	waitFor := func(what string, ok func(agentState) bool) {
		t.Helper()
		for range 600 {
			if _, err := os.Stat(filepath.Join(state, "state.json")); err == nil && ok(readAgentState(t, state)) {
				return
			}
			select {
			case code := <-done:
				t.Fatalf("the agent exited (%d) before %s:\n%s%s", code, what, dout.String(), derr.String())
			case <-time.After(100 * time.Millisecond):
			}
		}
		t.Fatalf("the agent did not %s:\n%s%s", what, dout.String(), derr.String())
	}
	waitFor("retry web twice", func(s agentState) bool { return s.Certificates["web"].Failures >= 2 })
	if now, _ := os.ReadFile(web); !bytes.Equal(now, working) {
		t.Fatalf("a failed renewal replaced the working certificate")
	}
	if now, _ := os.ReadFile(filepath.Join(work, "web", "key.pem")); !bytes.Equal(now, keyPEM) {
		t.Fatalf("a failed renewal replaced the working key")
	}
	// SIGHUP re-reads the configuration: the new reload argument is used.
	if err := os.WriteFile(conf, []byte(strings.Replace(body, hookArg(hook, "web"), hookArg(hook, "web-reloaded"), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	for i := 0; !strings.Contains(dout.String(), "reloaded "+conf); i++ {
		if i == 600 {
			t.Fatalf("SIGHUP did not reload the configuration:\n%s%s", dout.String(), derr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	fwd.up(t)
	waitFor("renew web once the server is back", func(s agentState) bool {
		w := s.Certificates["web"]
		return w.Failures == 0 && w.Serial != "" && w.Serial != "4d"
	})
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("the agent exited %d on cancel:\n%s", code, derr.String())
	}
	opensslVerify(t, dir, web, filepath.Join(work, "web", "chain.pem"))
	if prev, _ := os.ReadFile(web + ".prev"); !bytes.Equal(prev, working) {
		t.Fatalf("web/cert.pem.prev is not the certificate replaced")
	}
	if prev, _ := os.ReadFile(filepath.Join(work, "web", "key.pem.prev")); !bytes.Equal(prev, keyPEM) {
		t.Fatalf("web/key.pem.prev is not the key replaced")
	}
	key = tool(t, nil, "openssl", "pkey", "-in", filepath.Join(work, "web", "key.pem"), "-pubout")
	if got := tool(t, nil, "openssl", "x509", "-in", web, "-noout", "-pubkey"); got != key {
		t.Fatalf("the installed key is not the new certificate's")
	}
	if got := reloaded(); got != "web\ntok\ntok\ntok\nweb-reloaded\n" {
		t.Fatalf("reloads after the outage: %q", got)
	}

	// A failed reload puts the previous set back.
	keyPEM, _ = os.ReadFile(filepath.Join(work, "web", "key.pem"))
	b, _ = pem.Decode(keyPEM)
	if priv, err = x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
		t.Fatal(err)
	}
	signer = priv.(crypto.Signer)
	if der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer); err != nil {
		t.Fatal(err)
	}
	working = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	os.WriteFile(web, working, 0o640)
	os.WriteFile(conf, []byte(strings.Replace(body, hookArg(hook, "web"), `reload = ["/bin/false"]`, 1)), 0o600)
	fails("the previous certificate is back in place", append(agentArgs, "--once")...)
	if now, _ := os.ReadFile(web); !bytes.Equal(now, working) {
		t.Fatalf("a failed reload left the new certificate in place")
	}
	if now, _ := os.ReadFile(filepath.Join(work, "web", "key.pem")); !bytes.Equal(now, keyPEM) {
		t.Fatalf("a failed reload left the new key in place")
	}
	if s := readAgentState(t, state).Certificates["web"]; s.Failures != 1 {
		t.Fatalf("a failed reload is not counted as a failed renewal: %+v", s)
	}
}

func hookArg(hook, arg string) string { return fmt.Sprintf("reload = [%q, %q]", hook, arg) }

// TestAgentDefaultAccount: against a server that requires external account
// binding, an agent configuration without account_key gets an encrypted
// account key in its state directory (passphrase from a file: source
// relative to the configuration), bound with the configuration's eab_kid
// and eab_hmac; a later run uses the same account.
func TestAgentDefaultAccount(t *testing.T) {
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
	os.WriteFile(filepath.Join(work, "eab.hmac"), []byte(eab["hmac_key"]+"\n"), 0o600)
	os.WriteFile(filepath.Join(work, "pass"), []byte("a passphrase long enough\n"), 0o600)
	conf := filepath.Join(work, "agent.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`server = %q
ca_bundle = %q
passphrase = "file:pass"
eab_kid = %q
eab_hmac = "file:eab.hmac"

[[certificate]]
name = "www"
dns = ["www.signet.test"]
http_01 = "standalone:%d"
fullchain_file = "www.pem"
key_file = "www.key"
`, directory, filepath.Join(dir, "root.pem"), eab["kid"], httpPort)), 0o600)
	state := filepath.Join(work, "state")
	signetCLI(t, "agent", "--config", conf, "--state", state, "--once")
	u, _ := url.Parse(directory)
	acct, err := os.ReadFile(filepath.Join(state, "accounts", strings.ReplaceAll(u.Host, ":", "_"), "account.key"))
	if err != nil || !strings.Contains(string(acct), "ENCRYPTED PRIVATE KEY") {
		t.Fatalf("the default account key is not an encrypted file in the state directory: %v", err)
	}
	first := serialOf(t, filepath.Join(work, "www.pem"))
	os.Remove(filepath.Join(work, "www.pem"))
	signetCLI(t, "agent", "--config", conf, "--state", state, "--once")
	if serialOf(t, filepath.Join(work, "www.pem")) == first {
		t.Fatal("the second run did not obtain a new certificate")
	}
}
