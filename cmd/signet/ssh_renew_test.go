package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"signet/internal/kms/kmstest"
	"signet/internal/sshca"
	"signet/internal/sshca/sshtest"
)

// TestSSHRenewHost: a host renews its own certificate with signet ssh
// renew-host, holding only its host key (made by ssh-keygen), its
// certificate and the server's root, no home and no admin credential. The
// renewed certificate has a new serial, the same key, principals and key
// ID; a real sshd serves it and an ssh client that trusts only the
// authority's @cert-authority line logs in. A renewal that fails (wrong
// host key, server down) leaves the certificate file as it was.
func TestSSHRenewHost(t *testing.T) {
	o := sshtest.Require(t)
	keygen := kmstest.RequireTool(t, "ssh-keygen")
	const host = "renew.example.test"
	dir := filepath.Join(t.TempDir(), "home")
	work := t.TempDir()
	cli := homeCLI(t, dir)
	cli("init")
	cli("authority", "add", "hosts", "--purpose", "ssh-host", "--generate", "--key-type", "ed25519", "--allow-principal", host)
	cli("authority", "add", "users", "--purpose", "ssh-user", "--generate", "--key-type", "ed25519", "--allow-principal", o.User)

	hostKey := filepath.Join(work, "ssh_host_ed25519_key")
	certFile := hostKey + "-cert.pub"
	tool(t, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey)
	cli("ssh", "sign", "--authority", "hosts", "--host", "--principals", host, "--key-id", "host:"+host, "--validity", "2h", hostKey+".pub")
	userKey := filepath.Join(work, "user_key")
	tool(t, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-f", userKey)
	cli("ssh", "sign", "--authority", "users", "--user", "--principals", o.User, userKey+".pub")
	knownHosts, userCAs, krl := filepath.Join(work, "known_hosts"), filepath.Join(work, "user_cas"), filepath.Join(work, "users.krl")
	writeTest(t, knownHosts, cli("ssh", "trust", "--authority", "hosts"))
	writeTest(t, userCAs, cli("ssh", "trust", "--authority", "users"))
	cli("ssh", "krl", "--authority", "users", "--out", krl)
	old := readSSHCert(t, certFile)
	oldLine, _ := os.ReadFile(certFile)

	addr, _, serveOut, serveErr := startServe(t, dir)
	server, root := "https://"+addr, filepath.Join(dir, "root.pem")

	// Refused: a host key that is not the certificate's. Nothing is written.
	otherKey := filepath.Join(work, "other_key")
	tool(t, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-f", otherKey)
	var out, errOut lockedBuffer
	if code := run(context.Background(), []string{"ssh", "renew-host", "--server", server, "--ca-bundle", root, "--host-key", otherKey, "--cert", certFile}, nil, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "is not the key of certificate") {
		t.Errorf("renewal with another key: exit %d\n%s", code, errOut.String())
	}
	// Refused: no server listens there. Nothing is written.
	down := "https://127.0.0.1:" + strconv.Itoa(freePort(t))
	if code := run(context.Background(), []string{"ssh", "renew-host", "--server", down, "--ca-bundle", root, "--host-key", hostKey, "--cert", certFile}, nil, &out, &errOut); code == 0 {
		t.Errorf("renewal with the server down succeeded")
	}
	if now, _ := os.ReadFile(certFile); string(now) != string(oldLine) {
		t.Fatalf("a failed renewal changed %s", certFile)
	}

	printed := signetCLI(t, "ssh", "renew-host", "--server", server, "--ca-bundle", root, "--host-key", hostKey, "--cert", certFile)
	renewed := readSSHCert(t, certFile)
	if renewed.Serial == old.Serial || renewed.KeyId != "host:"+host || strings.Join(renewed.ValidPrincipals, ",") != host ||
		string(renewed.Key.Marshal()) != string(old.Key.Marshal()) || renewed.CertType != ssh.HostCert {
		t.Fatalf("renewed certificate %+v from %+v", renewed, old)
	}
	if !strings.Contains(printed, "Serial: "+strconv.FormatUint(renewed.Serial, 10)) {
		t.Errorf("renew-host printed:\n%s", printed)
	}
	if log := serveOut.String() + serveErr.String(); !strings.Contains(log, "renewed SSH host certificate") || !strings.Contains(log, "previous="+strconv.FormatUint(old.Serial, 10)) {
		t.Errorf("serve did not log the renewal:\n%s", log)
	}
	if listed := cli("ssh", "list", "--authority", "hosts", "--key-id", "host:"+host, "--json"); strings.Count(listed, `"status": "valid"`) != 2 {
		t.Errorf("want the old and the renewed certificate recorded as valid:\n%s", listed)
	}

	d := o.StartSSHD(t, "renewed", sshtest.Files{HostKey: hostKey, HostCert: certFile, UserCAs: userCAs, KRL: krl})
	if got, err := o.Login(t, d, host, knownHosts, userKey, userKey+"-cert.pub"); err != nil || strings.TrimSpace(got) != "ok" {
		t.Fatalf("login to the host with its renewed certificate: %v\n%s", err, got)
	}
}

func readSSHCert(t *testing.T, path string) *ssh.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sshca.ParseCertificate(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeTest(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAgentSSHHost: signet agent keeps SSH host certificates renewed
// ([[ssh_host]] in its configuration, no ACME account): a certificate past
// two thirds of its lifetime is renewed with its host key and the reload
// command runs; one not due is left alone. With the server down the due
// certificate stays as it was and the agent says when it tries again.
func TestAgentSSHHost(t *testing.T) {
	keygen := kmstest.RequireTool(t, "ssh-keygen")
	dir := filepath.Join(t.TempDir(), "home")
	work := t.TempDir()
	cli := homeCLI(t, dir)
	cli("init")
	cli("authority", "add", "hosts", "--purpose", "ssh-host", "--generate", "--key-type", "ed25519", "--allow-principal", "fresh.example.test", "--allow-principal", "due.example.test")
	sign := func(name, validity string) (key, cert string) {
		key = filepath.Join(work, name+"_host_key")
		tool(t, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-f", key)
		cli("ssh", "sign", "--authority", "hosts", "--host", "--principals", name+".example.test", "--validity", validity, key+".pub")
		return key, key + "-cert.pub"
	}
	freshKey, freshCert := sign("fresh", "2h")
	dueKey, dueCert := sign("due", "20s") // backdated a minute: past two thirds at once
	fresh, due := readSSHCert(t, freshCert), readSSHCert(t, dueCert)
	marker := filepath.Join(work, "reloaded")
	conf := filepath.Join(work, "agent.toml")
	body := func(server string) string {
		return fmt.Sprintf(`ca_bundle = %q
[[ssh_host]]
name = "fresh"
server = %q
host_key = %q
cert_file = %q

[[ssh_host]]
name = "due"
server = %q
host_key = %q
cert_file = %q
reload = ["touch", %q]
`, filepath.Join(dir, "root.pem"), server, freshKey, freshCert, server, dueKey, dueCert, marker)
	}
	state := filepath.Join(work, "state")
	agentArgs := []string{"agent", "--config", conf, "--state", state, "--once"}

	addr, _, _, _ := startServe(t, dir) // writes the root the agent trusts
	writeTest(t, conf, body("https://127.0.0.1:"+strconv.Itoa(freePort(t))))
	var out, errOut lockedBuffer
	if code := run(t.Context(), agentArgs, nil, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "stays; next try") {
		t.Fatalf("agent with the server down: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if readSSHCert(t, dueCert).Serial != due.Serial {
		t.Fatal("a failed renewal changed the certificate")
	}

	writeTest(t, conf, body("https://"+addr))
	printed := signetCLI(t, agentArgs...)
	renewed := readSSHCert(t, dueCert)
	if renewed.Serial == due.Serial || strings.Join(renewed.ValidPrincipals, ",") != "due.example.test" ||
		string(renewed.Key.Marshal()) != string(due.Key.Marshal()) || !strings.Contains(printed, "due: SSH host certificate renewed") {
		t.Fatalf("due certificate not renewed (serial %d, was %d):\n%s", renewed.Serial, due.Serial, printed)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the reload command did not run: %v", err)
	}
	if readSSHCert(t, freshCert).Serial != fresh.Serial || !strings.Contains(printed, "fresh: SSH host certificate") {
		t.Fatalf("the certificate not due was renewed:\n%s", printed)
	}
	// Renewed for the authority's default validity, it is not due again.
	os.Remove(marker)
	printed = signetCLI(t, agentArgs...)
	if readSSHCert(t, dueCert).Serial != renewed.Serial || strings.Contains(printed, "renewed") {
		t.Fatalf("renewed again:\n%s", printed)
	}
}
