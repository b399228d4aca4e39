// Package limits keeps a node's in-memory rate limits: new ACME accounts
// per source address, failed validations per account and name,
// certificates per authority, failed admin authentications per source
// address, SSH host renewals per host key. Each is a token bucket
// (golang.org/x/time/rate) per key, with a bounded number of keys. The limits that must hold across nodes (orders
// and pending authorizations per account) are counted in the store by
// their users; this package only carries their settings.
package limits

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"signet/internal/config"
	"signet/internal/errs"
)

// Limits are one node's limits. A nil *Limits limits nothing.
type Limits struct {
	cfg     config.Limits
	proxies []netip.Prefix
	now     func() time.Time

	newAccounts, failedValidations, certificates, failedAdmin, hostRenewals *keyed
}

// New builds the limits of cfg (its left-out settings defaulted); now is
// the clock (nil: time.Now).
func New(cfg config.Limits, now func() time.Time) (*Limits, error) {
	cfg = cfg.WithDefaults()
	proxies, err := cfg.Proxies()
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Limits{
		cfg: cfg, proxies: proxies, now: now,
		newAccounts:       newKeyed(cfg.NewAccountsPerIP, cfg.NewAccountsPerIP.Count, cfg.MaxTracked),
		failedValidations: newKeyed(cfg.FailedValidationsPerName, cfg.FailedValidationsPerName.Count, cfg.MaxTracked),
		certificates:      newKeyed(cfg.CertificatesPerAuthority, cfg.CertificatesBurst, cfg.MaxTracked),
		failedAdmin:       newKeyed(cfg.FailedAdminAuthPerIP, cfg.FailedAdminAuthPerIP.Count, cfg.MaxTracked),
		hostRenewals:      newKeyed(cfg.HostRenewalsPerKey, cfg.HostRenewalsPerKey.Count, cfg.MaxTracked),
	}, nil
}

// Settings are the limits as configured, defaults filled in; those of nil
// limits have only the default identifiers per order, and nothing else on.
func (l *Limits) Settings() config.Limits {
	if l == nil {
		return config.Limits{IdentifiersPerOrder: config.DefaultLimits().IdentifiersPerOrder}
	}
	return l.cfg
}

// NewAccount counts a new account from r's source address.
func (l *Limits) NewAccount(r *http.Request) error {
	if l == nil {
		return nil
	}
	src := l.Source(r)
	return l.newAccounts.take(src, l.now(), "too many new ACME accounts from %s (limit %s)", src, l.cfg.NewAccountsPerIP)
}

// Certificate counts a certificate of an authority.
func (l *Limits) Certificate(authority string) error {
	if l == nil {
		return nil
	}
	return l.certificates.take(authority, l.now(), "authority %q is issuing certificates faster than its limit of %s", authority, l.cfg.CertificatesPerAuthority)
}

// HostRenewal counts an SSH host's renewal of its own certificate, per
// host key (its fingerprint): each renewal gives a new serial, the key stays.
func (l *Limits) HostRenewal(hostKey string) error {
	if l == nil {
		return nil
	}
	return l.hostRenewals.take(hostKey, l.now(), "host key %s renewed its certificate too often (limit %s)", hostKey, l.cfg.HostRenewalsPerKey)
}

// CanValidate refuses a validation of name for an account that has failed
// too many lately.
func (l *Limits) CanValidate(account, name string) error {
	if l == nil {
		return nil
	}
	return l.failedValidations.check(account+" "+name, l.now(), "account %s failed to validate %s too often (limit %s)", account, name, l.cfg.FailedValidationsPerName)
}

// ValidationFailed counts a failed validation of name for an account.
func (l *Limits) ValidationFailed(account, name string) {
	if l != nil {
		l.failedValidations.take(account+" "+name, l.now(), "")
	}
}

// CanAuthenticate refuses an admin authentication from r's source address
// while it backs off after failures. It does not look at the credentials:
// during the back-off a right token is refused too, and after it works.
func (l *Limits) CanAuthenticate(r *http.Request) error {
	if l == nil {
		return nil
	}
	src := l.Source(r)
	return l.failedAdmin.check(src, l.now(), "too many failed authentications from %s (limit %s)", src, l.cfg.FailedAdminAuthPerIP)
}

// AuthenticationFailed counts a failed admin authentication from r's
// source address.
func (l *Limits) AuthenticationFailed(r *http.Request) {
	if l != nil {
		l.failedAdmin.take(l.Source(r), l.now(), "")
	}
}

// Source is the client address of r that the per-address limits count:
// the connection's peer, or, when that is a trusted proxy, the last
// address in X-Forwarded-For that is not one. IPv6 addresses count per
// /64, the block one host usually has.
func (l *Limits) Source(r *http.Request) string {
	addr := peer(r.RemoteAddr)
	if l != nil && l.trusted(addr) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed hop: trust nothing before it
			}
			addr = a.Unmap()
			if !l.trusted(addr) {
				break
			}
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func (l *Limits) trusted(a netip.Addr) bool {
	for _, p := range l.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peer(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// keyed is a token bucket per key, at most max keys: when full, a new key
// pushes out an arbitrary other (its count starts over when it comes back).
type keyed struct {
	limit rate.Limit
	burst int
	max   int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// newKeyed returns the buckets of r with the given burst; nil if r is off.
func newKeyed(r config.Rate, burst, most int) *keyed {
	if r.Off() {
		return nil
	}
	return &keyed{limit: rate.Limit(float64(r.Count) / r.Per.Seconds()), burst: max(burst, 1), max: max(most, 1), m: map[string]*rate.Limiter{}}
}

func (k *keyed) bucket(key string, create bool) *rate.Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.m[key]
	if b == nil && create {
		if len(k.m) >= k.max {
			for other := range k.m {
				delete(k.m, other)
				break
			}
		}
		b = rate.NewLimiter(k.limit, k.burst)
		k.m[key] = b
	}
	return b
}

// take takes a token of key's bucket, or refuses with a rate-limited
// error (format and args, then the rate) that says when to retry.
func (k *keyed) take(key string, now time.Time, format string, args ...any) error {
	if k == nil {
		return nil
	}
	res := k.bucket(key, true).ReserveN(now, 1)
	wait := res.DelayFrom(now)
	if wait == 0 {
		return nil
	}
	res.CancelAt(now)
	return errs.Later(errs.New(errs.RateLimited, format+": try again in %s", append(args, wait.Round(time.Second))...), wait)
}

// check refuses, as take does, if key's bucket is empty, without taking.
func (k *keyed) check(key string, now time.Time, format string, args ...any) error {
	if k == nil {
		return nil
	}
	b := k.bucket(key, false)
	if b == nil || b.TokensAt(now) >= 1 {
		return nil
	}
	return k.take(key, now, format, args...)
}
