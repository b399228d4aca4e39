package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"signet/internal/kms/kmstest"
)

// TestCheckXMPP: Prosody on loopback offers STARTTLS on its client and
// server ports. A certificate of signet's xmpp authority carries the
// SRV-IDs RFC 6120 13.7.1.2.1 asks for; a tls-server certificate for the
// same kind of domain has only its DNS-ID, which check flags.
func TestCheckXMPP(t *testing.T) {
	prosody := kmstest.RequireTool(t, "prosody")
	h := newCheckHome(t)
	xmppCert, xmppKey := h.issueFull(t, "xmpp", "xmpp", "example.org")
	webCert, webKey := h.issueFull(t, "web", "chat", "chat.example.org")
	startServe(t, h.home, "--http-listen", h.httpAddr)

	c2s, s2s := freePort(t), freePort(t)
	cfg := filepath.Join(h.dir, "prosody.cfg.lua")
	os.MkdirAll(filepath.Join(h.dir, "prosody"), 0o700)
	conf := fmt.Sprintf(`run_as_root = true
pidfile = %[1]q
data_path = %[2]q
log = { { levels = { min = "info" }, to = "console" } }
interfaces = { "127.0.0.1" }
c2s_ports = { %[3]d }
s2s_ports = { %[4]d }
http_ports = {}
https_ports = {}
c2s_direct_tls_ports = {}
s2s_direct_tls_ports = {}
modules_enabled = { "tls", "saslauth", "disco" }
c2s_require_encryption = true
VirtualHost "example.org"
  ssl = { certificate = %[5]q; key = %[6]q; }
VirtualHost "chat.example.org"
  ssl = { certificate = %[7]q; key = %[8]q; }
`, filepath.Join(h.dir, "prosody", "prosody.pid"), filepath.Join(h.dir, "prosody"), c2s, s2s, xmppCert, xmppKey, webCert, webKey)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, fmt.Sprintf("127.0.0.1:%d", s2s), prosody, "-F", "--config", cfg)
	c2sAddr, s2sAddr := fmt.Sprintf("127.0.0.1:%d", c2s), fmt.Sprintf("127.0.0.1:%d", s2s)

	for _, tc := range []struct {
		addr, starttls, service string
	}{{c2sAddr, "xmpp", "_xmpp-client"}, {s2sAddr, "xmpp-server", "_xmpp-server"}} {
		out, code := checkCLI(t, tc.addr, "--starttls", tc.starttls, "--name", "example.org", "--home", h.home)
		if code != 0 {
			t.Errorf("%s with the xmpp certificate: exit %d, want 0", tc.starttls, code)
		}
		wantLine(t, out, `^ok +name +certificate names the XMPP domain example\.org: SRV-ID `+tc.service+`\.example\.org, DNS-ID example\.org, XmppAddr example\.org$`)
		wantLine(t, out, `^ok +signet +certificate .* was issued by authority "xmpp"$`)

		out, code = checkCLI(t, tc.addr, "--starttls", tc.starttls, "--name", "chat.example.org", "--home", h.home)
		if code != 1 {
			t.Errorf("%s with a certificate without SRV-ID: exit %d, want 1", tc.starttls, code)
		}
		wantLine(t, out, `^warn +name +certificate names chat\.example\.org \(DNS-ID chat\.example\.org\) but has no SRV-ID `+tc.service+`\.chat\.example\.org`)
	}
	// A domain the server does not host gets no STARTTLS.
	out, code := checkCLI(t, c2sAddr, "--starttls", "xmpp", "--name", "elsewhere.example.net", "--home", h.home)
	if code != 2 {
		t.Errorf("unknown domain: exit %d, want 2", code)
	}
	wantLine(t, out, `^fail +connect +cannot connect to .*: XMPP server sent no stream features`)
}

// issueFull is issue with the chain appended to the certificate file, as
// servers that take one file (Prosody, PostgreSQL) want it.
func (h *checkHome) issueFull(t *testing.T, authority, name string, dns ...string) (cert, key string) {
	t.Helper()
	cert, chain, key := h.issue(t, authority, name, dns...)
	full := filepath.Join(h.dir, name+"-full.pem")
	if err := os.WriteFile(full, []byte(readText(t, cert)+readText(t, chain)), 0o644); err != nil {
		t.Fatal(err)
	}
	return full, key
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCheckPostgres: a PostgreSQL server with ssl = on, started here (the
// suite's SIGNET_TEST_POSTGRES server has TLS off), is checked through its
// SSLRequest. Its default ssl_ciphers (HIGH:MEDIUM:+3DES:!aNULL) let in
// CBC and RSA key exchange suites, which warn.
func TestCheckPostgres(t *testing.T) {
	initdb, pgctl := pgBin(t, "initdb"), pgBin(t, "pg_ctl")
	h := newCheckHome(t)
	cert, key := h.issueFull(t, "web", "db", "db.example.org")
	startServe(t, h.home, "--http-listen", h.httpAddr)

	dir, err := os.MkdirTemp("", "signet-check-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var as []string // PostgreSQL refuses to run as root
	uid, gid := -1, -1
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		as = []string{"runuser", "-u", "postgres", "--"}
	}
	data := filepath.Join(dir, "data")
	for _, f := range []struct{ from, to string }{{cert, "server.crt"}, {key, "server.key"}} {
		if err := os.WriteFile(filepath.Join(dir, f.to), []byte(readText(t, f.from)), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chown(filepath.Join(dir, f.to), uid, gid)
	}
	os.Chown(dir, uid, gid)
	pg := func(args ...string) {
		t.Helper()
		all := append(append([]string(nil), as...), args...)
		if out, err := exec.Command(all[0], all[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	pg(initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync")
	port := freePort(t)
	pg(pgctl, "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o",
		fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c ssl=on -c ssl_cert_file=%s -c ssl_key_file=%s",
			port, dir, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")), "start")
	t.Cleanup(func() {
		all := append(append([]string(nil), as...), pgctl, "-D", data, "-m", "immediate", "-w", "stop")
		exec.Command(all[0], all[1:]...).Run()
	})

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	out, code := checkCLI(t, addr, "--starttls", "postgres", "--name", "db.example.org", "--home", h.home)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantLine(t, out, `^warn +suites +TLS 1\.2: weak suites accepted: .*TLS_RSA_WITH_AES_128_CBC_SHA \(not AEAD, not forward secret\)`)
	wantLine(t, out, `^ok +protocol +TLS 1\.3: accepted$`)
	wantLine(t, out, `^ok +ocsp +http://.*: good$`)
	wantLine(t, out, `^ok +name +certificate names db\.example\.org$`)
	wantLine(t, out, `^ok +signet +certificate .* was issued by authority "web"$`)

	// Without --starttls the server's first byte is no TLS.
	if _, code := checkCLI(t, addr, "--name", "db.example.org", "--home", h.home); code != 2 {
		t.Errorf("without --starttls: exit %d, want 2", code)
	}
}

// pgBin finds a PostgreSQL server program, which Debian keeps out of PATH.
func pgBin(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name); len(m) > 0 {
		return m[len(m)-1]
	}
	return kmstest.RequireTool(t, name)
}

// TestCheckSMTP: Postfix on loopback (its own configuration directory,
// started in the foreground) offers STARTTLS after EHLO. With Postfix's
// defaults for opportunistic TLS (smtpd_tls_security_level = may) it still
// accepts TLS 1.0 and 1.1 and anonymous suites, which check fails, naming
// them.
func TestCheckSMTP(t *testing.T) {
	postfix := "/usr/sbin/postfix"
	if _, err := os.Stat(postfix); err != nil {
		postfix = kmstest.RequireTool(t, "postfix")
	}
	if os.Getuid() != 0 {
		t.Skip("Postfix's master runs as root only")
	}
	u, err := user.Lookup("postfix")
	if err != nil {
		t.Skipf("no postfix user (Debian's postfix package makes it): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	h := newCheckHome(t)
	cert, key := h.issueFull(t, "web", "mail", "mail.example.org")
	startServe(t, h.home, "--http-listen", h.httpAddr)

	dir, err := os.MkdirTemp("", "signet-check-postfix")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // Postfix's daemons, as user postfix, go through it
	for _, d := range []string{"queue", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chown(filepath.Join(dir, "data"), uid, -1) // master's lock file
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	files := map[string]string{
		"main.cf": fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.example.org
mydestination =
local_recipient_maps =
smtpd_tls_chain_files = %[2]s, %[3]s
smtpd_tls_security_level = may
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
`, dir, key, cert),
		"master.cf": addr + ` inet n - n - - smtpd
postlog unix-dgram n - n - 1 postlogd
tlsmgr unix - - n 1000? 1 tlsmgr
proxymap unix - - n - - proxymap
anvil unix - - n - 1 anvil
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	startDaemon(t, addr, postfix, "-c", dir, "start-fg")
	t.Cleanup(func() { exec.Command(postfix, "-c", dir, "stop").Run() }) // before startDaemon's

	out, code := checkCLI(t, addr, "--starttls", "smtp", "--name", "mail.example.org", "--home", h.home)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	wantLine(t, out, `^fail +protocol +TLS 1\.0: accepted`)
	wantLine(t, out, `^fail +suites +TLS 1\.2: weak suites accepted: .*TLS_DH_anon_WITH_AES_128_CBC_SHA \(anonymous, not AEAD\)`)
	wantLine(t, out, `^ok +protocol +TLS 1\.3: accepted$`)
	wantLine(t, out, `^ok +name +certificate names mail\.example\.org$`)
	wantLine(t, out, `^ok +ocsp +http://.*: good$`)
	wantLine(t, out, `^ok +signet +certificate .* was issued by authority "web"$`)
}
