package sshca_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"signet/internal/kms"
	"signet/internal/kms/kmstest"
	"signet/internal/profile"
	"signet/internal/sshca"
	"signet/internal/sshca/sshtest"
	"signet/internal/store"
)

// The login tests: a real sshd (Debian's openssh-server) started here on
// loopback with its own configuration (sshtest), and a real ssh client
// that trusts nothing but the @cert-authority line signet prints.

func TestOpenSSH(t *testing.T) {
	o := sshtest.Require(t)
	kmstest.RequireTool(t, "ssh-keygen")
	ctx := context.Background()
	f := newFixture(t, kms.Options{})
	dir := f.dir
	const host = "host1.example.test"
	f.authority(t, "hosts", profile.SSHHost, "file:hosts.key", kms.Ed25519, host, "other.example.test")
	f.authority(t, "users", profile.SSHUser, "file:users-1.key", kms.ECDSAP256, o.User, "alice")

	// The host: its key, a certificate for its name, and one for another.
	hostPub := sshKey(t, filepath.Join(dir, "host_key"))
	f.sign(t, nil, sshca.Request{Authority: "hosts", PublicKey: hostPub, Type: store.SSHHostCert, Principals: []string{host}},
		filepath.Join(dir, "host_key-cert.pub"))
	f.sign(t, nil, sshca.Request{Authority: "hosts", PublicKey: hostPub, Type: store.SSHHostCert, Principals: []string{"other.example.test"}},
		filepath.Join(dir, "wrong-cert.pub"))

	// What the client and the server install, exactly as signet prints it.
	knownHosts := filepath.Join(dir, "known_hosts")
	trust, err := f.ssh.Trust(ctx, "hosts", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(trust, "@cert-authority "+host+",other.example.test ssh-ed25519 ") || strings.Count(trust, "\n") != 1 {
		t.Fatalf("host trust lines:\n%s", trust)
	}
	writeFile(t, knownHosts, []byte(trust))
	userCAs := filepath.Join(dir, "user_cas")
	writeUserCAs := func() {
		t.Helper()
		lines, err := f.ssh.Trust(ctx, "users", "")
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, userCAs, []byte(lines))
	}
	writeUserCAs()
	krl := filepath.Join(dir, "revoked.krl")
	writeKRL := func() {
		t.Helper()
		b, err := f.ssh.KRL(ctx, "users")
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, krl, b)
	}
	writeKRL()

	d := o.StartSSHD(t, "main", sshtest.Files{HostKey: filepath.Join(dir, "host_key"), HostCert: filepath.Join(dir, "host_key-cert.pub"), UserCAs: userCAs, KRL: krl})
	mark := 0

	// user issues a user certificate for a fresh key named name.
	user := func(name string, c *sshca.CA, principals ...string) (key, cert string, iss *sshca.Issued) {
		t.Helper()
		key = filepath.Join(dir, name)
		pub := sshKey(t, key)
		cert = key + "-cert.pub"
		iss = f.sign(t, c, sshca.Request{Authority: "users", PublicKey: pub, Type: store.SSHUserCert, Principals: principals, KeyID: name}, cert)
		return key, cert, iss
	}
	ok := func(what, key, cert string) {
		t.Helper()
		out, err := o.Login(t, d, host, knownHosts, key, cert)
		if err != nil || strings.TrimSpace(out) != "ok" {
			t.Errorf("%s: login failed: %v\n%s\nsshd:\n%s", what, err, out, d.Since(t, &mark))
		}
		d.Since(t, &mark)
	}
	refused := func(what, key, cert, reason string) {
		t.Helper()
		out, err := o.Login(t, d, host, knownHosts, key, cert)
		log := d.Since(t, &mark)
		if err == nil || strings.Contains(out, "ok") {
			t.Errorf("%s: login succeeded, want it refused\n%s", what, out)
		} else if !strings.Contains(err.Error(), "Permission denied") || !strings.Contains(log, reason) {
			t.Errorf("%s: refused, but not with %q:\nssh: %s\nsshd:\n%s", what, reason, out, log)
		}
	}

	t.Run("UserCertificate", func(t *testing.T) {
		key, cert, _ := user("alice", nil, "alice", o.User)
		ok("user certificate", key, cert)
	})
	t.Run("MissingPrincipal", func(t *testing.T) {
		key, cert, _ := user("bob", nil, "alice")
		refused("certificate without the login's principal", key, cert, "name is not a listed principal")
	})
	t.Run("Expired", func(t *testing.T) {
		// The injected clock signs as if it were two days ago, for an hour.
		past := sshca.New(sshca.Options{Store: f.store, Keys: f.keys, Clock: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
		key, cert, iss := user("old", past, o.User)
		if time.Unix(int64(iss.Cert.ValidBefore), 0).After(time.Now()) {
			t.Fatalf("certificate valid until %d, want expired", iss.Cert.ValidBefore)
		}
		refused("expired certificate", key, cert, "expired")
	})
	t.Run("SourceAddress", func(t *testing.T) {
		from := func(name, cidr string) (key, cert string) {
			key = filepath.Join(dir, name)
			cert = key + "-cert.pub"
			f.sign(t, nil, sshca.Request{Authority: "users", PublicKey: sshKey(t, key), Type: store.SSHUserCert, Principals: []string{o.User},
				KeyID: name, Options: sshca.CertOptions{SourceAddresses: []string{cidr, "::1"}}}, cert)
			return key, cert
		}
		key, cert := from("loopback", "127.0.0.0/8")
		ok("certificate for the loopback network", key, cert)
		key, cert = from("elsewhere", "192.0.2.0/24")
		refused("certificate for another network", key, cert, "not from a permitted source address")
	})
	t.Run("RevokedInKRL", func(t *testing.T) {
		key, cert, iss := user("carol", nil, o.User)
		ok("before revocation", key, cert)
		if err := f.ssh.Revoke(ctx, "users", iss.Serial, "test"); err != nil {
			t.Fatal(err)
		}
		writeKRL()
		refused("certificate in the KRL", key, cert, "revoked by file")
		out, err := exec.Command("ssh-keygen", "-Q", "-f", krl, cert).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "REVOKED") {
			t.Errorf("ssh-keygen -Q: %v\n%s", err, out)
		}
	})
	t.Run("Rollover", func(t *testing.T) {
		oldKey, oldCert, _ := user("dave-old", nil, o.User)
		if _, err := f.keys.Generate(ctx, "file:users-2.key", kms.Ed25519); err != nil {
			t.Fatal(err)
		}
		k, err := f.ssh.AddKey(ctx, "users", "file:users-2.key", true, "test")
		if err != nil {
			t.Fatal(err)
		}
		newKey, newCert, iss := user("dave-new", nil, o.User)
		if got := iss.Cert.SignatureKey.Type(); got != "ssh-ed25519" {
			t.Fatalf("new certificate signed by a %s key, want the new ed25519 key", got)
		}
		// Before the trust lines list the new key, its certificates fail.
		refused("new key not yet installed", newKey, newCert, "is not listed in")
		writeUserCAs()
		ok("old key while both are trusted", oldKey, oldCert)
		ok("new key while both are trusted", newKey, newCert)

		keys, err := f.ssh.Keys(ctx, "users")
		if err != nil || len(keys) != 2 || keys[0].State != store.SSHKeyTrusted || keys[1].Fingerprint != k.Fingerprint {
			t.Fatalf("keys after rollover: %+v, %v", keys, err)
		}
		if _, err := f.ssh.SetKeyState(ctx, "users", keys[0].Fingerprint, store.SSHKeyRetired, "test"); err != nil {
			t.Fatal(err)
		}
		writeUserCAs()
		refused("old key after it was retired", oldKey, oldCert, "is not listed in")
		ok("new key after the old one was retired", newKey, newCert)
	})

	t.Run("WrongHostName", func(t *testing.T) {
		wrong := o.StartSSHD(t, "wrong-name", sshtest.Files{HostKey: filepath.Join(dir, "host_key"), HostCert: filepath.Join(dir, "wrong-cert.pub"), UserCAs: userCAs, KRL: krl})
		key, cert, _ := user("erin", nil, o.User)
		out, err := o.Login(t, wrong, host, knownHosts, key, cert)
		if err == nil || !strings.Contains(err.Error(), "Host key verification failed") {
			t.Errorf("host certificate for another name: %v\n%s", err, out)
		}
		// The same server is trusted under the name its certificate carries.
		if out, err := o.Login(t, wrong, "other.example.test", knownHosts, key, cert); err != nil || strings.TrimSpace(out) != "ok" {
			t.Errorf("host certificate under its own name: %v\n%s", err, out)
		}
	})
}

// TestOpenSSHSoftHSM has the host CA key on a SoftHSM2 token: sshd serves a
// host certificate it signed and the client accepts it.
func TestOpenSSHSoftHSM(t *testing.T) {
	o := sshtest.Require(t)
	module, pin := kmstest.SoftHSM(t, "sshca")
	pinFile := filepath.Join(t.TempDir(), "pin")
	writeFile(t, pinFile, []byte(pin))
	if err := os.Chmod(pinFile, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, kms.Options{Module: module, PIN: kms.Source("file:" + pinFile)})
	ctx := context.Background()
	dir := f.dir
	const host = "hsm.example.test"
	for _, kt := range []kms.KeyType{kms.ECDSAP256, kms.Ed25519} {
		t.Run(string(kt), func(t *testing.T) {
			name := "hosts-" + strings.ReplaceAll(string(kt), "-", "")
			f.authority(t, name, profile.SSHHost, "pkcs11:token=sshca;object="+name, kt, host)
			f.authority(t, "users-"+name, profile.SSHUser, "file:users-"+name+".key", kms.Ed25519, o.User)
			hostKey := filepath.Join(dir, name+"_host_key")
			hostPub := sshKey(t, hostKey)
			f.sign(t, nil, sshca.Request{Authority: name, PublicKey: hostPub, Type: store.SSHHostCert, Principals: []string{host}}, hostKey+"-cert.pub")
			knownHosts := filepath.Join(dir, name+"_known_hosts")
			trust, err := f.ssh.Trust(ctx, name, "")
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, knownHosts, []byte(trust))
			userCAs := filepath.Join(dir, name+"_user_cas")
			lines, err := f.ssh.Trust(ctx, "users-"+name, "")
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, userCAs, []byte(lines))
			krl := filepath.Join(dir, name+".krl")
			b, _ := f.ssh.KRL(ctx, "users-"+name)
			writeFile(t, krl, b)
			d := o.StartSSHD(t, name, sshtest.Files{HostKey: hostKey, HostCert: hostKey + "-cert.pub", UserCAs: userCAs, KRL: krl})
			key := filepath.Join(dir, name+"_user")
			pub := sshKey(t, key)
			f.sign(t, nil, sshca.Request{Authority: "users-" + name, PublicKey: pub, Principals: []string{o.User}}, key+"-cert.pub")
			if out, err := o.Login(t, d, host, knownHosts, key, key+"-cert.pub"); err != nil || strings.TrimSpace(out) != "ok" {
				t.Errorf("login to a host certified by the token's %s key: %v\n%s", kt, err, out)
			}
		})
	}
}
