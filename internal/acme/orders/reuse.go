package orders

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"signet/internal/acme"
	"signet/internal/errs"
	"signet/internal/store"
)

// reuseScan bounds the orders one new order reads for reusable
// authorizations, the newest first: at most a few per identifier (100 per
// order) unless an account ordered one name many times lately.
const reuseScan = 200

// reusable returns the authorizations for keys (ACMEAuthz.ReuseKey) that a
// new order of account at authority may reuse now, as the order would
// hold them: valid, the account's own
// (never another account's, whatever the identifier), not deactivated,
// validated less than the reuse window ago and not past their own expiry.
// Each names its source in Reused, so that deactivating the source also
// ends the new order's authorization (see checkReused).
func (b *Book) reusable(ctx context.Context, authority, account string, keys []string, now time.Time) ([]store.ACMEAuthz, error) {
	if b.o.AuthzReuse <= 0 {
		return nil, nil
	}
	found, err := b.store.ReusableACMEOrders(ctx, account, keys, now, reuseScan)
	if err != nil {
		return nil, err
	}
	var out []store.ACMEAuthz
	for _, o := range found {
		if o.AccountID != account || o.Authority != authority {
			continue
		}
		for n, az := range o.Authzs {
			i := slices.IndexFunc(az.Challenges, func(c store.ACMEChallenge) bool { return c.Status == store.StatusValid })
			if !az.Reusable() || !now.Before(az.Expires) || i < 0 ||
				!now.Before(az.Challenges[i].Validated.Add(b.o.AuthzReuse)) {
				continue
			}
			az.Challenges = []store.ACMEChallenge{az.Challenges[i]}
			az.Reused = o.ID + "/" + strconv.Itoa(n)
			out = append(out, az)
		}
	}
	return out, nil
}

// reuse picks among the reusable authorizations one for the identifier
// of az (the same wildcard-ness: a wildcard needs a dns-01 validation),
// the one expiring last.
func reuse(reusable []store.ACMEAuthz, az *store.ACMEAuthz) (store.ACMEAuthz, bool) {
	var best store.ACMEAuthz
	for _, r := range reusable {
		if r.Identifier == az.Identifier && r.Wildcard == az.Wildcard && r.Expires.After(best.Expires) {
			best = r
		}
	}
	return best, !best.Expires.IsZero()
}

// ReusedSource splits an authorization's Reused into the source order's ID
// and the authorization's index in it; ok is false for its own.
func ReusedSource(az *store.ACMEAuthz) (order string, n int, ok bool) {
	order, num, ok := strings.Cut(az.Reused, "/")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.Atoi(num)
	return order, n, err == nil
}

// checkReused refuses to finalize o if a source of its reused
// authorizations is no longer valid: it was deactivated (through the URL
// the order names for it, or the source order's), or the source order is
// gone.
func (b *Book) checkReused(ctx context.Context, o *store.ACMEOrder) error {
	for i := range o.Authzs {
		id, n, ok := ReusedSource(&o.Authzs[i])
		if !ok {
			continue
		}
		src, err := b.store.ACMEOrder(ctx, id)
		if err != nil && errs.KindOf(err) != errs.NotFound {
			return err
		}
		if err != nil || src.AccountID != o.AccountID || n >= len(src.Authzs) || b.AuthzStatus(&src, n) != store.StatusValid ||
			src.Authzs[n].Identifier != o.Authzs[i].Identifier {
			return acme.Errorf(acme.OrderNotReady, errs.Unauthorized,
				"the authorization for %s that order %s reused is no longer valid: create a new order", o.Authzs[i].Identifier.Value, o.ID)
		}
	}
	return nil
}
