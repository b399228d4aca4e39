package policy

import (
	"errors"
	"net"
	"strings"
	"testing"
)

// FuzzCheck feeds arbitrary names through Check and asserts what must hold
// for any input: no panic, refusals only of kind Rejected and each naming
// one input, and an accepted DNS name is canonical and under an entry.
func FuzzCheck(f *testing.F) {
	f.Add("www.example.org", []byte{10, 0, 0, 1}, "alice@example.org")
	f.Add("*.corp", []byte{}, "")
	p := Policy{DNS: []string{"example.org", ".corp"}, IP: []string{"10.0.0.0/8", "2001:db8::/32"}, Email: []string{"example.org"}, Wildcards: true}
	f.Fuzz(func(t *testing.T, dns string, ip []byte, email string) {
		err := p.Check([]string{dns}, []net.IP{ip}, []string{email})
		var rs Refusals
		if err != nil && !errors.As(err, &rs) {
			t.Fatalf("error without refusals: %v", err)
		}
		refused := map[string]bool{}
		for _, r := range rs {
			refused[r.Type] = true
			if r.Reason == "" {
				t.Fatalf("refusal without reason: %+v", r)
			}
		}
		if !refused["dns"] {
			if dns != strings.ToLower(dns) || strings.HasSuffix(dns, ".") || len(dns) > 253 || dns == "" {
				t.Fatalf("accepted non-canonical dns name %q", dns)
			}
			if dns != "example.org" && !strings.HasSuffix(dns, ".example.org") && !strings.HasSuffix(dns, ".corp") {
				t.Fatalf("accepted %q outside the policy", dns)
			}
			if net.ParseIP(dns) != nil {
				t.Fatalf("accepted IP-looking dns name %q", dns)
			}
		}
		if !refused["ip"] {
			a := net.IP(ip)
			if !(&net.IPNet{IP: net.IP{10, 0, 0, 0}, Mask: net.CIDRMask(8, 32)}).Contains(a) &&
				!(&net.IPNet{IP: net.ParseIP("2001:db8::"), Mask: net.CIDRMask(32, 128)}).Contains(a) {
				t.Fatalf("accepted ip %v outside the policy", a)
			}
		}
		if !refused["email"] && !strings.HasSuffix(email, "@example.org") {
			t.Fatalf("accepted email %q outside the policy", email)
		}
	})
}
