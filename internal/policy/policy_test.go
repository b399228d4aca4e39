package policy

import (
	"errors"
	"net"
	"strings"
	"testing"

	"signet/internal/errs"
)

func ips(ss ...string) []net.IP {
	var out []net.IP
	for _, s := range ss {
		out = append(out, net.ParseIP(s))
	}
	return out
}

var corp = Policy{
	DNS:   []string{"example.org", ".corp"},
	IP:    []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"},
	Email: []string{"example.org", "boss@other.net"},
}

func TestCheck(t *testing.T) {
	wild := corp
	wild.Wildcards = true
	tests := []struct {
		name    string
		p       Policy
		dns     []string
		ips     []net.IP
		emails  []string
		refused []string // every refusal's text, in order; nil means accepted
	}{
		{name: "domain itself", p: corp, dns: []string{"example.org"}},
		{name: "below domain", p: corp, dns: []string{"a.b.example.org", "kvm1.corp"}},
		{name: "dot entry excludes itself", p: corp, dns: []string{"corp"},
			refused: []string{`dns name "corp" is outside this authority's policy (permits example.org, .corp)`}},
		{name: "suffix is not a label boundary", p: corp, dns: []string{"badexample.org", "evil.com"},
			refused: []string{`dns name "badexample.org" is outside`, `dns name "evil.com" is outside this authority's policy (permits example.org, .corp)`}},
		{name: "any dns", p: Policy{DNS: []string{"*"}}, dns: []string{"anything.example", "localhost"}},
		{name: "empty list permits nothing", p: Policy{}, dns: []string{"example.org"}, ips: ips("10.0.0.1"), emails: []string{"a@example.org"},
			refused: []string{`dns name "example.org" is outside this authority's policy (it permits no names of this type)`, `ip name "10.0.0.1" is outside`, `email name "a@example.org" is outside`}},
		{name: "wildcard refused", p: corp, dns: []string{"*.example.org"},
			refused: []string{`dns name "*.example.org" is a wildcard and this authority does not issue wildcards`}},
		{name: "wildcard permitted", p: wild, dns: []string{"*.example.org", "*.kvm.corp", "*.corp"}},
		{name: "wildcard outside", p: wild, dns: []string{"*.org"}, refused: []string{`dns name "*.org" is outside`}},
		{name: "wildcard not leftmost", p: wild, dns: []string{"a.*.example.org", "a*.example.org", "*"},
			refused: []string{`"a.*.example.org" has a wildcard that is not the whole leftmost label`, `"a*.example.org" has a wildcard that is not the whole leftmost label`, `dns name "*" is a bare wildcard`}},
		{name: "syntax", p: Policy{DNS: []string{"*"}}, dns: []string{
			"", "Example.org", "example.org.", "10.1.2.3", "::1", "a..b", "-a.corp", "a-.corp", "a_b.corp",
			"bücher.example", strings.Repeat("a", 64) + ".corp", strings.Repeat("abcdefghi.", 26) + "corp", "host.123", "xn--bcher-kva.example",
		}, refused: []string{
			`dns name "" is empty`,
			`"Example.org" has upper-case letters`,
			`"example.org." ends with a dot`,
			`"10.1.2.3" is an IP address, not a DNS name`,
			`"::1" is an IP address`,
			`"a..b" has an empty label`,
			`"-a.corp" has a label that starts or ends with a hyphen`,
			`"a-.corp" has a label that starts or ends with a hyphen`,
			`"a_b.corp" has the character '_'`,
			`"bücher.example" is not ASCII`,
			`has a label longer than 63 characters`,
			`is longer than 253 characters`,
			`"host.123" ends in an all-numeric label`,
		}},
		{name: "ips", p: corp, ips: ips("10.255.0.1", "2001:db8::5", "192.0.2.7", "::ffff:10.0.0.1")},
		{name: "ips outside", p: corp, ips: ips("11.0.0.1", "192.0.2.8", "2001:db9::1"),
			refused: []string{`ip name "11.0.0.1" is outside this authority's policy (permits 10.0.0.0/8, 2001:db8::/32, 192.0.2.7)`, `ip name "192.0.2.8"`, `ip name "2001:db9::1"`}},
		{name: "bad ip", p: Policy{IP: []string{"*"}}, ips: []net.IP{nil, {1, 2, 3}}, refused: []string{`is not a valid IP address`, `is not a valid IP address`}},
		{name: "any ip", p: Policy{IP: []string{"*"}}, ips: ips("8.8.8.8", "::1")},
		{name: "emails", p: corp, emails: []string{"alice@example.org", "boss@other.net"}},
		{name: "emails outside", p: corp, emails: []string{"alice@other.net", "bob@sub.example.org"},
			refused: []string{`email name "alice@other.net" is outside this authority's policy (permits example.org, boss@other.net)`, `"bob@sub.example.org" is outside`}},
		{name: "email syntax", p: Policy{Email: []string{"*"}}, emails: []string{"", "noat", "a@b@c.org", "@example.org", "a b@example.org", ".a@example.org", "a@Example.org", "a@example.org."},
			refused: []string{`"" is empty`, `"noat" has no @`, `has more than one @`, `has an empty local part`, `has the character ' ' in its local part`, `misplaced dot`, `has a domain that has upper-case letters`, `has a domain that ends with a dot`}},
		{name: "mixed: every refused name listed, accepted ones not", p: corp,
			dns: []string{"ok.corp", "evil.com"}, ips: ips("10.0.0.1", "8.8.8.8"), emails: []string{"a@example.org", "a@evil.com"},
			refused: []string{`"evil.com"`, `"8.8.8.8"`, `"a@evil.com"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Validate(); err != nil {
				t.Fatalf("test policy invalid: %v", err)
			}
			err := tc.p.Check(tc.dns, tc.ips, tc.emails)
			if tc.refused == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if errs.KindOf(err) != errs.Rejected {
				t.Fatalf("err = %v, want rejected", err)
			}
			var rs Refusals
			if !errors.As(err, &rs) {
				t.Fatalf("no Refusals in %v", err)
			}
			if len(rs) != len(tc.refused) {
				t.Fatalf("%d refusals, want %d: %v", len(rs), len(tc.refused), err)
			}
			for i, want := range tc.refused {
				if !strings.Contains(rs[i].String(), want) {
					t.Errorf("refusal %d = %q, want it to contain %q", i, rs[i], want)
				}
				if !strings.Contains(err.Error(), rs[i].String()) {
					t.Errorf("error text lacks refusal %d: %v", i, err)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := Policy{DNS: []string{"*", "example.org", ".corp", "xn--bcher-kva.example"}, IP: []string{"*", "10.0.0.0/8", "::1", "::ffff:10.0.0.0/104"},
		Email: []string{"*", "example.org", "a@example.org"}, Principals: []string{"*", "root", "alice"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Policy{
		DNS:        []string{"*.example.org", "Example.org", "corp.", "", "10.0.0.1"},
		IP:         []string{"10.0.0.0/33", "ten", "::ffff:0.0.0.0/8"},
		Email:      []string{"a@@b", "Example.org"},
		Principals: []string{"", "a b", "x,y"},
	}
	err := bad.Validate()
	if errs.KindOf(err) != errs.Malformed {
		t.Fatalf("err = %v, want malformed", err)
	}
	for _, want := range []string{
		`dns entry "*.example.org" is a wildcard; write ".example.org"`,
		`dns entry "Example.org" has upper-case`,
		`dns entry "corp." ends with a dot`,
		`dns entry "" is empty`,
		`dns entry "10.0.0.1" is an IP address`,
		`ip entry "10.0.0.0/33" is not a CIDR`,
		`ip entry "ten" is not a CIDR`,
		`ip entry "::ffff:0.0.0.0/8" is not a CIDR`,
		`email entry "a@@b" has more than one @`,
		`email entry "Example.org" has upper-case`,
		`principal entry "" is empty`,
		`principal entry "a b" has the character ' '`,
		`principal entry "x,y" has the character ','`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
}

func TestCheckPrincipals(t *testing.T) {
	p := Policy{Principals: []string{"root", "alice"}}
	if err := p.CheckPrincipals([]string{"root", "alice"}); err != nil {
		t.Fatal(err)
	}
	err := p.CheckPrincipals([]string{"root", "mallory", "a b"})
	if errs.KindOf(err) != errs.Rejected || !strings.Contains(err.Error(), `principal name "mallory" is outside this authority's policy (permits root, alice)`) ||
		!strings.Contains(err.Error(), `principal name "a b" has the character ' '`) || strings.Contains(err.Error(), `"root"`) {
		t.Errorf("err = %v", err)
	}
	if err := (Policy{Principals: []string{"*"}}).CheckPrincipals([]string{"anyone"}); err != nil {
		t.Error(err)
	}
}

func TestCanonicalAndString(t *testing.T) {
	if got := Canonical("WWW.Example.ORG."); got != "www.example.org" {
		t.Errorf("Canonical = %q", got)
	}
	if err := corp.Check([]string{Canonical("Host.Corp.")}, nil, nil); err != nil {
		t.Error(err)
	}
	want := "dns=example.org,.corp (wildcards) ip=10.0.0.0/8 email=none principals=none"
	if got := (Policy{DNS: []string{"example.org", ".corp"}, IP: []string{"10.0.0.0/8"}, Wildcards: true}).String(); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestParse(t *testing.T) {
	for _, raw := range []string{"", "{}"} {
		p, err := Parse([]byte(raw))
		if err != nil || p.String() != (Policy{}).String() || p.Principals != nil || p.DNS != nil {
			t.Errorf("Parse(%q) = %+v, %v; want the zero policy", raw, p, err)
		}
	}
	p, err := Parse([]byte(`{"principals":["alice"],"dns":["example.org"],"wildcards":true}`))
	if err != nil || len(p.Principals) != 1 || p.Principals[0] != "alice" || len(p.DNS) != 1 || !p.Wildcards {
		t.Errorf("Parse = %+v, %v", p, err)
	}
	if _, err := Parse([]byte(`{"principals":`)); errs.KindOf(err) != errs.Malformed {
		t.Errorf("truncated policy: %v, want a Malformed error", err)
	}
}
