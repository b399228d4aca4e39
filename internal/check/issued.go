package check

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"signet/internal/store"
)

// Inventory is the part of signet's store that knows what it issued.
type Inventory interface {
	Certificate(ctx context.Context, serial string) (store.Certificate, error)
	Certificates(ctx context.Context, f store.Filter) ([]store.Certificate, error)
}

// Issued says whether signet issued the served certificate, and whether it
// issued a newer one, not revoked and not expired, for all of its names
// that the endpoint does not serve yet. Newer is issued later or ending
// later (a renewal made within the same second ends later).
func Issued(ctx context.Context, r *Report, inv Inventory, now time.Time) error {
	leaf := r.Leaf
	if leaf == nil {
		return nil
	}
	serial := fmt.Sprintf("%x", leaf.SerialNumber)
	c, err := inv.Certificate(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.add(Info, "signet", "certificate %s was not issued by this signet", serial)
	case err != nil:
		return err
	case c.Status == store.Revoked:
		r.add(Fail, "signet", "certificate %s was issued by authority %q and revoked on %s", serial, c.Authority, c.RevokedAt.UTC().Format(time.RFC3339))
	default:
		r.add(OK, "signet", "certificate %s was issued by authority %q", serial, c.Authority)
	}
	names := certNames(leaf)
	if len(names) == 0 {
		return nil
	}
	f := store.Filter{Name: names[0]}
	f.Narrow("valid", 0, now)
	list, err := inv.Certificates(ctx, f)
	if err != nil {
		return err
	}
	var newer *store.Certificate
	for i, n := range list {
		if n.Serial == serial || !n.NotBefore.After(leaf.NotBefore) && !n.NotAfter.After(leaf.NotAfter) || !covers(n, names) {
			continue
		}
		if newer == nil || n.NotAfter.After(newer.NotAfter) {
			newer = &list[i]
		}
	}
	if newer != nil {
		r.add(Warn, "signet", "signet issued a newer certificate for these names, not deployed here: %s (authority %q, issued %s)", newer.Serial, newer.Authority, newer.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

func certNames(c *x509.Certificate) []string {
	n := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		n = append(n, ip.String())
	}
	return append(n, c.EmailAddresses...)
}

// covers reports whether c carries every one of names.
func covers(c store.Certificate, names []string) bool {
	have := append(append(slices.Clone(c.DNSNames), c.IPAddresses...), c.EmailAddresses...)
	for _, n := range names {
		if !slices.Contains(have, n) {
			return false
		}
	}
	return true
}
