// Package policy owns the name policy of an authority: which DNS names, IP
// addresses, email addresses and SSH principals it may certify. It checks
// both that a name is permitted and that it is well-formed, and explains
// every refusal.
package policy

import (
	"encoding/json"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"signet/internal/errs"
)

// Policy lists the names an authority may certify. An empty list for a type
// permits nothing of that type.
//
// Names are certified in canonical form only: lower case, without a trailing
// dot, A-labels (xn--) for internationalised names. Check refuses any other
// spelling rather than rewriting it, so what policy approved is byte for byte
// what the certificate says; callers that accept user input may pass it
// through Canonical first. Policy entries must be canonical too (Validate).
type Policy struct {
	DNS        []string `json:"dns,omitempty"`        // "example.org" permits example.org and every name below it; ".example.org" only names below it; "*" any DNS name
	IP         []string `json:"ip,omitempty"`         // CIDRs (a bare address means just it); "*" any
	Email      []string `json:"email,omitempty"`      // "user@example.org" exact, "example.org" any mailbox at that domain; "*" any
	Principals []string `json:"principals,omitempty"` // SSH principals, exact; "*" any
	Wildcards  bool     `json:"wildcards,omitempty"`  // may DNS names be "*.x" wildcards
}

// Parse decodes a policy as an authority's record stores it; no bytes at
// all are the zero policy, which permits nothing.
func Parse(raw []byte) (Policy, error) {
	var p Policy
	if len(raw) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return Policy{}, errs.Wrap(errs.Malformed, err, "cannot decode the policy")
	}
	return p, nil
}

// Any is the entry that permits every name of its type.
const Any = "*"

// Canonical lower-cases a DNS name and drops one trailing dot: the spelling
// Check accepts.
func Canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// Validate reports every malformed entry at once, as errs.Malformed.
func (p Policy) Validate() error {
	var problems []string
	bad := func(kind, entry, why string) {
		problems = append(problems, kind+" entry "+quote(entry)+" "+why)
	}
	for _, e := range p.DNS {
		switch {
		case e == Any:
		case strings.HasPrefix(e, "*"):
			bad("dns", e, "is a wildcard; write "+quote(strings.TrimPrefix(e, "*"))+" for the names below a domain")
		default:
			if why := dnsSyntax(strings.TrimPrefix(e, "."), false); why != "" {
				bad("dns", e, why)
			}
		}
	}
	for _, e := range p.IP {
		if e == Any {
			continue
		}
		if _, err := parsePrefix(e); err != nil {
			bad("ip", e, "is not a CIDR or an IP address")
		}
	}
	for _, e := range p.Email {
		switch {
		case e == Any:
		case strings.Contains(e, "@"):
			if why := emailSyntax(e); why != "" {
				bad("email", e, why)
			}
		default:
			if why := dnsSyntax(e, false); why != "" {
				bad("email", e, why)
			}
		}
	}
	for _, e := range p.Principals {
		if why := principalSyntax(e); e != Any && why != "" {
			bad("principal", e, why)
		}
	}
	if len(problems) > 0 {
		return errs.New(errs.Malformed, "invalid name policy: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Refusal explains why one name was refused.
type Refusal struct {
	Type   string // "dns", "ip", "email" or "principal"
	Name   string
	Reason string
}

func (r Refusal) String() string { return r.Type + " name " + quote(r.Name) + " " + r.Reason }

// Refusals is every name a Check refused. It is the cause inside the
// errs.Rejected that Check returns, so the ACME server can turn each into a
// subproblem (RFC 8555 6.7.1) with errors.As.
type Refusals []Refusal

func (rs Refusals) Error() string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, "; ")
}

// Check decides whether an authority with this policy may certify all the
// given names. It returns errs.Rejected wrapping Refusals that name every
// refused name and why: a name outside the policy, or a malformed one.
func (p Policy) Check(dns []string, ips []net.IP, emails []string) error {
	var rs Refusals
	for _, n := range dns {
		if why := dnsSyntax(n, true); why != "" {
			rs = append(rs, Refusal{"dns", n, why})
		} else if strings.HasPrefix(n, "*.") && !p.Wildcards {
			rs = append(rs, Refusal{"dns", n, "is a wildcard and this authority does not issue wildcards"})
		} else if !p.permitsDNS(n) {
			rs = append(rs, Refusal{"dns", n, outside(p.DNS)})
		}
	}
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			rs = append(rs, Refusal{"ip", ip.String(), "is not a valid IP address"})
		} else if !p.permitsIP(a.Unmap()) {
			rs = append(rs, Refusal{"ip", a.Unmap().String(), outside(p.IP)})
		}
	}
	for _, e := range emails {
		if why := emailSyntax(e); why != "" {
			rs = append(rs, Refusal{"email", e, why})
		} else if !p.permitsEmail(e) {
			rs = append(rs, Refusal{"email", e, outside(p.Email)})
		}
	}
	return rs.err()
}

// CheckPrincipals is Check for SSH principals: exact matches, "*" for any.
func (p Policy) CheckPrincipals(principals []string) error {
	var rs Refusals
	for _, n := range principals {
		if why := principalSyntax(n); why != "" {
			rs = append(rs, Refusal{"principal", n, why})
		} else if !slices.Contains(p.Principals, n) && !slices.Contains(p.Principals, Any) {
			rs = append(rs, Refusal{"principal", n, outside(p.Principals)})
		}
	}
	return rs.err()
}

func (rs Refusals) err() error {
	if len(rs) == 0 {
		return nil
	}
	return errs.Wrap(errs.Rejected, rs, "refused")
}

func outside(entries []string) string {
	if len(entries) == 0 {
		return "is outside this authority's policy (it permits no names of this type)"
	}
	return "is outside this authority's policy (permits " + strings.Join(entries, ", ") + ")"
}

// permitsDNS expects a syntactically valid name. A wildcard "*.x" is
// matched as a name below x, which is exactly what it covers.
func (p Policy) permitsDNS(name string) bool {
	for _, e := range p.DNS {
		switch {
		case e == Any:
			return true
		case strings.HasPrefix(e, "."):
			if strings.HasSuffix(name, e) {
				return true
			}
		case name == e || strings.HasSuffix(name, "."+e):
			return true
		}
	}
	return false
}

func (p Policy) permitsIP(a netip.Addr) bool {
	for _, e := range p.IP {
		if e == Any {
			return true
		}
		if pfx, err := parsePrefix(e); err == nil && pfx.Contains(a) {
			return true
		}
	}
	return false
}

func (p Policy) permitsEmail(addr string) bool {
	domain := addr[strings.IndexByte(addr, '@')+1:]
	for _, e := range p.Email {
		if e == Any || e == addr || e == domain {
			return true
		}
	}
	return false
}

// parsePrefix reads a CIDR or a bare address (a /32 or /128), with
// IPv4-mapped IPv6 addresses unmapped so 10.0.0.0/8 covers ::ffff:10.1.2.3.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if pfx.Addr().Is4In6() {
		bits := pfx.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, errs.New(errs.Malformed, "prefix too short")
		}
		pfx = netip.PrefixFrom(pfx.Addr().Unmap(), bits)
	}
	return pfx.Masked(), nil
}

// String summarises the policy for `authority list`.
func (p Policy) String() string {
	list := func(l []string) string {
		if len(l) == 0 {
			return "none"
		}
		return strings.Join(l, ",")
	}
	s := "dns=" + list(p.DNS)
	if p.Wildcards {
		s += " (wildcards)"
	}
	return s + " ip=" + list(p.IP) + " email=" + list(p.Email) + " principals=" + list(p.Principals)
}

func quote(s string) string { return strconv.Quote(s) }
