package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"signet/internal/kms/kmstest"
)

// loopbackDNS starts a DNS server on a free UDP port that answers
// 127.0.0.1 for every A query and, when txtDir is set, TXT queries for a
// name with the lines of the file txtDir/NAME (the name lower case, with
// its final dot). It returns the address and the server's stop.
func loopbackDNS(txtDir string) (string, func(), error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	ds := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(m)
		q := m.Question[0]
		switch q.Qtype {
		case dns.TypeA:
			r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
		case dns.TypeTXT:
			if data, err := os.ReadFile(filepath.Join(txtDir, strings.ToLower(q.Name))); txtDir != "" && err == nil {
				for _, v := range strings.Fields(string(data)) {
					r.Answer = append(r.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 0}, Txt: []string{v}})
				}
			}
		}
		w.WriteMsg(r)
	})}
	go ds.ActivateAndServe()
	return pc.LocalAddr().String(), func() { ds.Shutdown() }, nil
}

// startDNS starts loopbackDNS (A records only) for the test.
func startDNS(t *testing.T) string { return startDNSTXT(t, "") }

// startDNSTXT starts loopbackDNS for the test, with TXT records from txtDir.
func startDNSTXT(t *testing.T, txtDir string) string {
	t.Helper()
	addr, stop, err := loopbackDNS(txtDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

// acmeServe starts `signet serve` with its ACME server validating http-01
// on a free port, names resolved by a DNS server of the test's that
// answers 127.0.0.1 for everything. It returns the home, the directory URL
// and the http-01 port. prepare, if given, runs on a fresh home (made with
// signet init) before the server starts.
func acmeServe(t *testing.T, prepare ...func(dir string)) (dir, directory string, httpPort int) {
	t.Helper()
	dir, directory, httpPort, _ = acmeServePorts(t, startDNS(t), prepare...)
	return dir, directory, httpPort
}

// acmeServePorts is acmeServe that also returns the tls-alpn-01 port; it
// validates with the DNS server at resolver.
func acmeServePorts(t *testing.T, resolver string, prepare ...func(dir string)) (dir, directory string, httpPort, tlsPort int) {
	t.Helper()

	dir = filepath.Join(t.TempDir(), "home")
	if len(prepare) > 0 {
		var out, errOut lockedBuffer
		if code := run(context.Background(), []string{"init", "--home", dir}, nil, &out, &errOut); code != 0 {
			t.Fatalf("signet init: %s", errOut.String())
		}
		for _, p := range prepare {
			p(dir)
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	httpPort, tlsPort = freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"serve", "--home", dir, "--listen", addr, "--acme-resolver", resolver,
			"--acme-http-port", strconv.Itoa(httpPort), "--acme-tls-port", strconv.Itoa(tlsPort),
			"--http-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, nil, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	waitHealthy(t, dir, addr, exited, &stderr)
	directory = "https://" + addr + "/acme/default/directory"
	if !strings.Contains(stdout.String(), directory) {
		t.Errorf("serve does not print the ACME directory %s:\n%s", directory, stdout.String())
	}
	return dir, directory, httpPort, tlsPort
}

// tool runs an external program with a bounded time and returns its output.
func tool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s %s: %s", filepath.Base(name), args[0], time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// opensslVerify checks cert against the home's root with the chain.
func opensslVerify(t *testing.T, dir, cert, chain string) {
	t.Helper()
	out := tool(t, nil, "openssl", "verify", "-CAfile", filepath.Join(dir, "root.pem"), "-untrusted", chain, cert)
	if !strings.Contains(out, ": OK") {
		t.Fatalf("openssl verify: %s", out)
	}
}

// serial reads a certificate's serial with openssl, lowercase hex.
func serialOf(t *testing.T, cert string) string {
	out := tool(t, nil, "openssl", "x509", "-noout", "-serial", "-in", cert)
	return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(out), "serial="))
}

// revoked asks signet whether a certificate is revoked.
func revoked(t *testing.T, dir, serial string) bool {
	var out, errb lockedBuffer
	if code := run(context.Background(), []string{"show", "--home", dir, "--json", serial}, nil, &out, &errb); code != 0 {
		t.Fatalf("signet show %s: %s", serial, errb.String())
	}
	return strings.Contains(out.String(), `"revoked"`)
}

// TestCertbot: Debian's certbot obtains, renews and revokes a certificate
// with standalone http-01, unchanged, against `signet serve`.
func TestCertbot(t *testing.T) {
	certbot := kmstest.RequireTool(t, "certbot")
	kmstest.RequireTool(t, "openssl")
	dir, directory, httpPort := acmeServe(t)
	work := t.TempDir()
	env := []string{"REQUESTS_CA_BUNDLE=" + filepath.Join(dir, "root.pem")}
	common := []string{"--server", directory, "--config-dir", filepath.Join(work, "config"), "--work-dir", filepath.Join(work, "work"),
		"--logs-dir", filepath.Join(work, "logs"), "--non-interactive"}
	name := "certbot.signet.test"
	tool(t, env, certbot, append([]string{"certonly", "--standalone", "--http-01-port", strconv.Itoa(httpPort),
		"--http-01-address", "127.0.0.1", "--register-unsafely-without-email", "--agree-tos", "-d", name}, common...)...)
	live := filepath.Join(work, "config", "live", name)
	opensslVerify(t, dir, filepath.Join(live, "cert.pem"), filepath.Join(live, "chain.pem"))
	first := serialOf(t, filepath.Join(live, "cert.pem"))

	tool(t, env, certbot, append([]string{"renew", "--force-renewal", "--no-random-sleep-on-renew"}, common...)...)
	opensslVerify(t, dir, filepath.Join(live, "cert.pem"), filepath.Join(live, "chain.pem"))
	second := serialOf(t, filepath.Join(live, "cert.pem"))
	if first == second {
		t.Fatalf("renewal kept serial %s", first)
	}

	tool(t, env, certbot, append([]string{"revoke", "--cert-path", filepath.Join(live, "cert.pem"), "--reason", "superseded",
		"--no-delete-after-revoke"}, common...)...)
	if !revoked(t, dir, second) || revoked(t, dir, first) {
		t.Errorf("after certbot revoke: %s revoked %v (want true), %s revoked %v (want false)", second, revoked(t, dir, second), first, revoked(t, dir, first))
	}
}

// TestLego: lego (Debian's) obtains, renews and revokes with http-01.
func TestLego(t *testing.T) {
	lego := kmstest.RequireTool(t, "lego")
	kmstest.RequireTool(t, "openssl")
	dir, directory, httpPort := acmeServe(t)
	path := t.TempDir()
	env := []string{"LEGO_CA_CERTIFICATES=" + filepath.Join(dir, "root.pem")}
	name := "lego.signet.test"
	common := []string{"--server", directory, "--accept-tos", "--email", "ops@example.org", "--domains", name,
		"--http", "--http.port", "127.0.0.1:" + strconv.Itoa(httpPort), "--path", path}
	tool(t, env, lego, append(common, "run")...)
	crt := filepath.Join(path, "certificates", name+".crt")
	issuer := filepath.Join(path, "certificates", name+".issuer.crt")
	opensslVerify(t, dir, crt, issuer)
	first := serialOf(t, crt)

	tool(t, env, lego, append(common, "renew", "--days", "365", "--no-random-sleep")...)
	opensslVerify(t, dir, crt, issuer)
	second := serialOf(t, crt)
	if first == second {
		t.Fatalf("renewal kept serial %s", first)
	}
	tool(t, env, lego, append(common, "revoke")...)
	if !revoked(t, dir, second) {
		t.Errorf("lego revoke left %s valid", second)
	}
}

// TestLegoSelfSigned: lego obtains a certificate from a self-signed
// authority; the chain it downloads ends at that authority's certificate
// (no root), and the certificate verifies against that anchor alone, not
// against the home's root.
func TestLegoSelfSigned(t *testing.T) {
	lego := kmstest.RequireTool(t, "lego")
	kmstest.RequireTool(t, "openssl")
	var anchor string
	dir, directory, httpPort := acmeServe(t, func(dir string) {
		for _, args := range [][]string{
			{"authority", "add", "web", "--purpose", "tls-server", "--generate", "--allow-dns", "signet.test", "--acme", "--self-signed"},
			{"root", "--authority", "web"},
		} {
			var out, errOut lockedBuffer
			if code := run(context.Background(), append(args, "--home", dir), nil, &out, &errOut); code != 0 {
				t.Fatalf("signet %s: %s", strings.Join(args, " "), errOut.String())
			}
			anchor = out.String()
		}
	})
	anchorFile := filepath.Join(t.TempDir(), "web-anchor.pem")
	if err := os.WriteFile(anchorFile, []byte(anchor), 0o644); err != nil {
		t.Fatal(err)
	}
	directory = strings.Replace(directory, "/acme/default/", "/acme/web/", 1)
	path := t.TempDir()
	env := []string{"LEGO_CA_CERTIFICATES=" + filepath.Join(dir, "root.pem")} // the server's TLS certificate is the default authority's
	name := "self.signet.test"
	tool(t, env, lego, "--server", directory, "--accept-tos", "--email", "ops@example.org", "--domains", name,
		"--http", "--http.port", "127.0.0.1:"+strconv.Itoa(httpPort), "--path", path, "run")
	crt := filepath.Join(path, "certificates", name+".crt")
	issuer, err := os.ReadFile(filepath.Join(path, "certificates", name+".issuer.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(issuer)) != strings.TrimSpace(anchor) {
		t.Errorf("the ACME chain is\n%s\nwant the authority's certificate alone:\n%s", issuer, anchor)
	}
	if out := tool(t, nil, "openssl", "verify", "-purpose", "sslserver", "-CAfile", anchorFile, crt); !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify against the anchor: %s", out)
	}
	cmd := exec.Command("openssl", "verify", "-CAfile", filepath.Join(dir, "root.pem"), "-untrusted", crt, crt)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("the home's root accepts a certificate of a self-signed authority:\n%s", out)
	}
}

// TestLegoEAB: an authority that requires external account binding refuses
// lego's registration without it and accepts it with a key from
// `signet acme eab create`, which works once.
func TestLegoEAB(t *testing.T) {
	lego := kmstest.RequireTool(t, "lego")
	var kid, hmac string
	dir, directory, httpPort := acmeServe(t, func(dir string) {
		f, err := os.OpenFile(filepath.Join(dir, "signet.toml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, "\n[acme]\nrequire_eab = ['default']")
		f.Close()
		var out, errOut lockedBuffer
		if code := run(context.Background(), []string{"acme", "eab", "create", "--home", dir, "--authority", "default", "--json"}, nil, &out, &errOut); code != 0 {
			t.Fatalf("signet acme eab create: %s", errOut.String())
		}
		var got struct {
			Kid     string `json:"kid"`
			HMACKey string `json:"hmac_key"`
		}
		if err := json.Unmarshal([]byte(out.String()), &got); err != nil || got.Kid == "" || got.HMACKey == "" {
			t.Fatalf("eab create output %q: %v", out.String(), err)
		}
		kid, hmac = got.Kid, got.HMACKey
	})
	env := []string{"LEGO_CA_CERTIFICATES=" + filepath.Join(dir, "root.pem")}
	account := func(path string) []string {
		return []string{"--server", directory, "--accept-tos", "--email", "ops@example.org", "--domains", "eab.signet.test",
			"--http", "--http.port", "127.0.0.1:" + strconv.Itoa(httpPort), "--path", path}
	}
	try := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, lego, args...)
		cmd.Env = append(os.Environ(), env...)
		return cmd.CombinedOutput()
	}
	if out, err := try(append(account(t.TempDir()), "run")...); err == nil {
		t.Fatalf("lego registered without external account binding:\n%s", out)
	} else if !strings.Contains(string(out), "requires External Account Binding") {
		// lego reads externalAccountRequired from the directory's meta and
		// stops before registering; the server's own refusal of such a
		// newAccount is in internal/acme/wfe's EAB tests.
		t.Errorf("lego did not see that the directory requires EAB (%v):\n%s", err, out)
	}
	path := t.TempDir()
	tool(t, env, lego, append(account(path), "--eab", "--kid", kid, "--hmac", hmac, "run")...)
	opensslVerify(t, dir, filepath.Join(path, "certificates", "eab.signet.test.crt"), filepath.Join(path, "certificates", "eab.signet.test.issuer.crt"))
	if out, err := try(append(account(t.TempDir()), "--eab", "--kid", kid, "--hmac", hmac, "run")...); err == nil {
		t.Fatalf("an EAB key bound a second account:\n%s", out)
	} else if !strings.Contains(string(out), "urn:ietf:params:acme:error:") {
		t.Errorf("second binding of one EAB key not refused by the server (%v):\n%s", err, out)
	}
}
