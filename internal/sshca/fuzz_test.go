package sshca_test

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"signet/internal/sshca"
)

// FuzzParse feeds untrusted .pub and -cert.pub input (from the CLI and the
// API) to signet's parsers and the inspector: they must never panic, and
// whatever parses must survive a round trip.
func FuzzParse(f *testing.F) {
	f.Add([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh0f+7HAJDoDaYOlp+5BQ63mrmk/YTAlc8i6enVXYd0 alice@laptop\n"))
	f.Add([]byte(""))
	f.Add([]byte("ssh-ed25519-cert-v01@openssh.com AAAA"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if pub, err := sshca.ParsePublicKey(data); err == nil {
			again, err := ssh.ParsePublicKey(pub.Marshal())
			if err != nil || string(again.Marshal()) != string(pub.Marshal()) {
				t.Fatalf("public key does not round-trip: %v", err)
			}
		}
		cert, err := sshca.ParseCertificate(data)
		if err != nil {
			return
		}
		out := sshca.Inspect("fuzz", cert)
		if !strings.HasPrefix(out, "fuzz:\n        Type: ") {
			t.Fatalf("inspect output:\n%s", out)
		}
		again, err := ssh.ParsePublicKey(cert.Marshal())
		if err != nil || string(again.Marshal()) != string(cert.Marshal()) {
			t.Fatalf("certificate does not round-trip: %v", err)
		}
	})
}

// FuzzCheckHostPattern feeds the public trust route's ?pattern= to its
// validator: whatever it accepts must make exactly one known_hosts line
// that ssh reads back as a @cert-authority line for those very patterns.
func FuzzCheckHostPattern(f *testing.F) {
	for _, p := range []string{"*", "*.example.org,!old.example.org", "[web.example.org]:2222", "2001:db8::1", "a\x00b", "a#b", "a,,b", "[a]:022"} {
		f.Add(p)
	}
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh0f+7HAJDoDaYOlp+5BQ63mrmk/YTAlc8i6enVXYd0"
	f.Fuzz(func(t *testing.T, pattern string) {
		if sshca.CheckHostPattern(pattern) != nil {
			return
		}
		marker, hosts, _, _, rest, err := ssh.ParseKnownHosts([]byte("@cert-authority " + pattern + " " + key + " signet:hosts\n"))
		if err != nil || marker != "cert-authority" || len(rest) != 0 || strings.Join(hosts, ",") != pattern {
			t.Fatalf("accepted pattern %q reads back as marker %q hosts %q rest %q err %v", pattern, marker, hosts, rest, err)
		}
	})
}
