package sshca_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/profile"
	"signet/internal/sshca"
	"signet/internal/store"
)

// TestSourceAddressAsOpenSSH: signet refuses every source-address entry
// OpenSSH refuses (sshd then rejects the whole certificate), with a clear
// error and nothing recorded. ssh-keygen -O source-address= applies the
// same check as sshd (addr_match_cidr_list), so each entry is put to it
// too: signet and OpenSSH must agree, except where signet is stricter.
func TestSourceAddressAsOpenSSH(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, kms.Options{})
	f.authority(t, "users", profile.SSHUser, "file:users.key", kms.Ed25519, "alice")
	pub := sshKey(t, filepath.Join(f.dir, "alice"))
	keygen, _ := exec.LookPath("ssh-keygen")
	if keygen != "" {
		sshKey(t, filepath.Join(f.dir, "ca"))
	}
	for _, tc := range []struct {
		entry    string
		refused  string // "": issued
		stricter bool   // OpenSSH accepts what signet refuses
	}{
		{"10.0.0.0/8", "", false},
		{"10.1.2.3", "", false},
		{"10.1.2.3/32", "", false},
		{"0.0.0.0/0", "", false},
		{"::1", "", false},
		{"fe80::/10", "", false},
		{"FE80::1", "", false},
		{"2001:db8::/32", "", false},
		{"::ffff:10.0.0.1", "", false},
		{"10.1.2.3/8", "host bits set, which sshd refuses; write 10.0.0.0/8", false},
		{"2001:db8::1/32", "host bits set", false},
		{"fe80::1%eth0", "IPv6 zone", false},
		{"fe80::1%1", "IPv6 zone", false},
		{"10.0.0.0/33", "not a CIDR", false},
		{"::/129", "not a CIDR", false},
		{"", "not a CIDR", false},
		{"10.0.0.0/", "not a CIDR", false},
		{"1.2.3.4,5.6.7.8", "not a CIDR", true}, // one entry each, please
		{" 10.0.0.1", "not a CIDR", false},
		{"host.example.org", "not a CIDR", false},
		{"0000:0000:0000:0000:0000:ffff:255.255.255.255/128", "", false},
		{"00000:0000:0000:0000:0000:ffff:255.255.255.255/128", "not a CIDR", false},
	} {
		_, err := f.ssh.Issue(ctx, sshca.Request{Authority: "users", PublicKey: pub, Principals: []string{"alice"},
			Options: sshca.CertOptions{SourceAddresses: []string{tc.entry}}, Actor: "test"})
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%q: %v", tc.entry, err)
		case tc.refused != "" && (errs.KindOf(err) != errs.Malformed || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%q: got %v, want it refused with %q", tc.entry, err, tc.refused)
		}
		if keygen == "" {
			continue
		}
		out, kerr := exec.Command(keygen, "-q", "-s", filepath.Join(f.dir, "ca"), "-I", "x", "-n", "alice",
			"-O", "source-address="+tc.entry, filepath.Join(f.dir, "alice.pub")).CombinedOutput()
		if (err == nil) != (kerr == nil) && !tc.stricter {
			t.Errorf("%q: signet says %v, OpenSSH says %v %s", tc.entry, err, kerr, out)
		}
	}
	certs, err := f.store.SSHCertificates(ctx, store.SSHFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 10 {
		t.Errorf("%d certificates recorded, want 10 (refusals record nothing)", len(certs))
	}
}
