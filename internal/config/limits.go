package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"signet/internal/errs"
)

// Limits are this node's rate limits ([limits] in signet.toml). A setting
// left out takes its default (DefaultLimits); a rate of 0 ("0/1h") turns
// that limit off.
type Limits struct {
	TrustedProxies           []string `toml:"trusted_proxies,omitempty" comment:"CIDRs of reverse proxies whose X-Forwarded-For header names the client; from other addresses it is ignored"`
	NewAccountsPerIP         Rate     `toml:"new_accounts_per_ip,omitempty" comment:"new ACME accounts per source IP address (IPv6: per /64), as COUNT/DURATION (default 50/1h)"`
	OrdersPerAccount         Rate     `toml:"orders_per_account,omitempty" comment:"new ACME orders per account (default 300/1h)"`
	PendingAuthzsPerAccount  int      `toml:"pending_authorizations_per_account,omitempty" comment:"pending ACME authorizations one account may hold (default 1000)"`
	IdentifiersPerOrder      int      `toml:"identifiers_per_order,omitempty" comment:"identifiers in one ACME order (default 100)"`
	FailedValidationsPerName Rate     `toml:"failed_validations_per_account_name,omitempty" comment:"failed ACME validations per account and name before its challenges are refused (default 5/1h)"`
	CertificatesPerAuthority Rate     `toml:"certificates_per_authority,omitempty" comment:"certificates each authority issues over ACME and the API (default 100/1s)"`
	CertificatesBurst        int      `toml:"certificates_burst,omitempty" comment:"certificates an authority may issue at once above that rate (default 500)"`
	FailedAdminAuthPerIP     Rate     `toml:"failed_admin_auth_per_ip,omitempty" comment:"failed /api/v1 authentications per source IP before it must wait, at most DURATION/COUNT, between attempts (default 10/1m)"`
	HostRenewalsPerKey       Rate     `toml:"ssh_host_renewals_per_key,omitempty" comment:"SSH host certificates a host renews by itself per host key (default 10/1h)"`
	MaxTracked               int      `toml:"max_tracked,omitempty" comment:"source addresses, accounts and names each in-memory limit tracks at most; beyond, it forgets some (default 100000)"`
}

// DefaultLimits are the limits of a node whose signet.toml sets none.
func DefaultLimits() Limits {
	return Limits{
		NewAccountsPerIP:         Rate{Count: 50, Per: time.Hour},
		OrdersPerAccount:         Rate{Count: 300, Per: time.Hour},
		PendingAuthzsPerAccount:  1000,
		IdentifiersPerOrder:      100,
		FailedValidationsPerName: Rate{Count: 5, Per: time.Hour},
		CertificatesPerAuthority: Rate{Count: 100, Per: time.Second},
		CertificatesBurst:        500,
		FailedAdminAuthPerIP:     Rate{Count: 10, Per: time.Minute},
		HostRenewalsPerKey:       Rate{Count: 10, Per: time.Hour},
		MaxTracked:               100000,
	}
}

// WithDefaults fills in the settings l leaves out.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	for _, r := range []struct{ v, def *Rate }{
		{&l.NewAccountsPerIP, &d.NewAccountsPerIP}, {&l.OrdersPerAccount, &d.OrdersPerAccount},
		{&l.FailedValidationsPerName, &d.FailedValidationsPerName}, {&l.CertificatesPerAuthority, &d.CertificatesPerAuthority},
		{&l.FailedAdminAuthPerIP, &d.FailedAdminAuthPerIP}, {&l.HostRenewalsPerKey, &d.HostRenewalsPerKey},
	} {
		if r.v.Per == 0 {
			*r.v = *r.def
		}
	}
	for _, n := range []struct{ v, def *int }{
		{&l.PendingAuthzsPerAccount, &d.PendingAuthzsPerAccount}, {&l.IdentifiersPerOrder, &d.IdentifiersPerOrder},
		{&l.CertificatesBurst, &d.CertificatesBurst}, {&l.MaxTracked, &d.MaxTracked},
	} {
		if *n.v == 0 {
			*n.v = *n.def
		}
	}
	return l
}

// Proxies parses TrustedProxies.
func (l Limits) Proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range l.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			return nil, errs.New(errs.Malformed, "limits.trusted_proxies: %q is not a CIDR; write one like 10.0.0.0/8 or 2001:db8::/32", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// problems lists what is wrong with l, for Validate.
func (l Limits) problems() []string {
	var out []string
	if _, err := l.Proxies(); err != nil {
		out = append(out, err.Error())
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"pending_authorizations_per_account", l.PendingAuthzsPerAccount}, {"identifiers_per_order", l.IdentifiersPerOrder},
		{"certificates_burst", l.CertificatesBurst}, {"max_tracked", l.MaxTracked},
	} {
		if n.v < 0 {
			out = append(out, fmt.Sprintf("limits.%s: %d is negative; give a positive number, or leave it out for the default", n.name, n.v))
		}
	}
	return out
}

// Rate is a limit of Count events per Per, written "COUNT/DURATION" (the
// duration as ParseDuration takes it: "50/1h", "5/30m", "100/1s"). Count
// 0 turns the limit off.
type Rate struct {
	Count int
	Per   time.Duration
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rate) UnmarshalText(b []byte) error {
	s := string(b)
	count, per, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if !ok || err != nil || n < 0 {
		return errs.New(errs.Malformed, "rate %q: write COUNT/DURATION, like 50/1h (0/1h turns the limit off)", s)
	}
	d, err := ParseDuration(strings.TrimSpace(per))
	if err != nil {
		return errs.Wrap(errs.Malformed, err, "rate %q", s)
	}
	if d == 0 {
		return errs.New(errs.Malformed, "rate %q: the duration must be longer than zero, like 50/1h", s)
	}
	*r = Rate{Count: n, Per: d}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) {
	per := r.Per.String()
	switch {
	case r.Per%time.Hour == 0:
		per = strconv.FormatInt(int64(r.Per/time.Hour), 10) + "h"
	case r.Per%time.Minute == 0:
		per = strconv.FormatInt(int64(r.Per/time.Minute), 10) + "m"
	}
	return []byte(strconv.Itoa(r.Count) + "/" + per), nil
}

// String is r as written in signet.toml.
func (r Rate) String() string {
	b, _ := r.MarshalText()
	return string(b)
}

// Off reports whether r turns its limit off.
func (r Rate) Off() bool { return r.Count == 0 }
