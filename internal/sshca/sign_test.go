package sshca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestFingerprint: the issue event's fingerprint, computed from the wire
// form certificate() already has, is ssh.FingerprintSHA256's.
func TestFingerprint(t *testing.T) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []crypto.Signer{ed, ec, rk} {
		pub, err := ssh.NewPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fingerprint(pub.Marshal()), ssh.FingerprintSHA256(pub); got != want {
			t.Errorf("%s: fingerprint %s, want %s", pub.Type(), got, want)
		}
	}
}

// TestDefaultPermissions: a user certificate without options gets every
// permit-* extension and no critical option, as ssh-keygen gives.
func TestDefaultPermissions(t *testing.T) {
	p, err := CertOptions{}.permissions()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc"}
	if len(p.Extensions) != len(want) || len(p.CriticalOptions) != 0 {
		t.Fatalf("extensions %v, critical options %v; want %v and none", p.Extensions, p.CriticalOptions, want)
	}
	for _, name := range want {
		if v, ok := p.Extensions[name]; !ok || v != "" {
			t.Errorf("extensions %v lack %s", p.Extensions, name)
		}
	}
}

// TestPermissions: every permit-* extension unless switched off.
func TestPermissions(t *testing.T) {
	p, err := CertOptions{NoPTY: true, NoX11Forwarding: true}.permissions()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"permit-agent-forwarding", "permit-port-forwarding", "permit-user-rc"}
	if len(p.Extensions) != len(want) {
		t.Fatalf("extensions %v, want %v", p.Extensions, want)
	}
	for _, name := range want {
		if _, ok := p.Extensions[name]; !ok {
			t.Errorf("extensions %v lack %s", p.Extensions, name)
		}
	}
}
