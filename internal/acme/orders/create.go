package orders

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"signet/internal/acme"
	"signet/internal/acme/ari"
	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/policy"
	"signet/internal/store"
)

// Create records a new order of account at authority a (§7.4), with RFC
// 8738 IP identifiers, wildcards where the policy allows them, profiles
// and RFC 9773 replaces, and per identifier a valid authorization of the
// account's to reuse (Options.AuthzReuse) or else a pending one, with its
// acme.order.create event. The order it returns is as stored
// (Version 1).
func (b *Book) Create(ctx context.Context, a *Authority, account string, in acme.NewOrderRequest) (store.ACMEOrder, error) {
	var o store.ACMEOrder
	if in.NotBefore != "" || in.NotAfter != "" {
		return o, errs.New(errs.Malformed, "notBefore and notAfter are not supported: choose a profile")
	}
	if len(in.Identifiers) == 0 {
		return o, errs.New(errs.Malformed, "an order needs at least one identifier")
	}
	if most := b.o.Limits.Settings().IdentifiersPerOrder; len(in.Identifiers) > most {
		return o, errs.New(errs.RateLimited, "an order may name at most %d identifiers; split it", most)
	}
	if in.Profile == "" {
		in.Profile = "default"
	}
	if _, ok := a.Profiles[in.Profile]; !ok {
		return o, acme.Errorf(acme.InvalidProfile, errs.Malformed, "authority %q has no profile %q", a.Name, in.Profile)
	}
	ids, err := identifiers(a, in.Identifiers)
	if err != nil {
		return o, err
	}
	now := b.now()
	o = store.ACMEOrder{
		ID: newOrderID(now), Authority: a.Name, AccountID: account, Status: store.StatusPending,
		Expires: now.Add(b.o.Lifetime).UTC().Truncate(time.Second), Identifiers: ids, Profile: in.Profile, CreatedAt: now.UTC(),
	}
	if in.Replaces != "" {
		if o.Replaces, err = b.checkReplaces(ctx, a, account, in.Replaces, ids); err != nil {
			return o, err
		}
	}
	o.Authzs = make([]store.ACMEAuthz, len(ids))
	keys := make([]string, len(ids))
	for i, id := range ids {
		az := store.ACMEAuthz{Identifier: id, Status: store.StatusPending}
		if base, ok := strings.CutPrefix(id.Value, "*."); ok && id.Type == "dns" {
			az.Identifier.Value, az.Wildcard = base, true
		}
		o.Authzs[i], keys[i] = az, az.ReuseKey()
	}
	reusable, err := b.reusable(ctx, a.Name, account, keys, now)
	if err != nil {
		return o, err
	}
	var reused []string
	for i := range o.Authzs {
		az := &o.Authzs[i]
		if r, ok := reuse(reusable, az); ok {
			// The order lives no longer than what it reuses.
			*az, reused = r, append(reused, r.Reused)
			o.Expires = minTime(o.Expires, r.Expires)
			continue
		}
		types := []string{acme.HTTP01, acme.DNS01, acme.TLSALPN01}
		if az.Identifier.Type == "ip" {
			types = []string{acme.HTTP01, acme.TLSALPN01}
		} else if az.Wildcard {
			types = []string{acme.DNS01}
		}
		for _, t := range types {
			az.Challenges = append(az.Challenges, store.ACMEChallenge{Type: t, Token: newToken(), Status: store.StatusPending})
		}
	}
	if err := b.checkLoad(ctx, account, o.PendingAuthzs()); err != nil {
		return o, err
	}
	data := map[string]any{"identifiers": ids, "profile": o.Profile, "replaces": o.Replaces}
	if reused != nil {
		data["reused"] = reused
	}
	settle(&o) // ready at once when every authorization was reused
	ev := event(audit.KindACMEOrderCreate, &o, data)
	if err := b.store.CreateACMEOrder(ctx, o, ev); err != nil {
		return o, err
	}
	o.Version = 1
	return o, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// identifiers canonicalizes an order's identifiers, drops repeats and
// checks them against the authority's policy.
func identifiers(a *Authority, in []acme.Identifier) ([]store.ACMEIdentifier, error) {
	var dns []string
	var ips []net.IP
	var ids []store.ACMEIdentifier
	for _, id := range in {
		switch id.Type {
		case "dns":
			v := policy.Canonical(id.Value)
			if !slices.Contains(dns, v) {
				dns = append(dns, v)
				ids = append(ids, store.ACMEIdentifier{Type: "dns", Value: v})
			}
		case "ip":
			addr, err := netip.ParseAddr(id.Value)
			if err != nil || addr.Zone() != "" {
				return nil, errs.New(errs.Malformed, "ip identifier %q is not an IP address", id.Value)
			}
			v := addr.Unmap().String()
			if !slices.ContainsFunc(ids, func(x store.ACMEIdentifier) bool { return x.Type == "ip" && x.Value == v }) {
				ips = append(ips, net.IP(addr.Unmap().AsSlice()))
				ids = append(ids, store.ACMEIdentifier{Type: "ip", Value: v})
			}
		default:
			return nil, acme.Errorf(acme.UnsupportedIdentifier, errs.Malformed, "identifier type %q is not supported (use dns or ip)", id.Type)
		}
	}
	if err := a.Policy.Check(dns, ips, nil); err != nil {
		return nil, err
	}
	return ids, nil
}

// checkReplaces accepts a certificate of this account that shares an
// identifier with the new order and that no live order replaces yet
// (RFC 9773 §5), and returns its serial.
func (b *Book) checkReplaces(ctx context.Context, a *Authority, account, certID string, ids []store.ACMEIdentifier) (string, error) {
	aki, serial, err := ari.ParseCertID(certID)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(aki, a.SKI) {
		return "", errs.New(errs.Malformed, "replaces: the certificate was not issued by authority %q", a.Name)
	}
	c, err := b.store.Certificate(ctx, serial)
	if err != nil || c.Authority != a.Name || c.Requester != "acme:"+account {
		return "", acme.Errorf(acme.Unauthorized, errs.Unauthorized, "replaces: certificate %s was not issued to this account", serial)
	}
	if !slices.ContainsFunc(ids, func(id store.ACMEIdentifier) bool {
		return id.Type == "dns" && slices.Contains(c.DNSNames, id.Value) || id.Type == "ip" && slices.Contains(c.IPAddresses, id.Value)
	}) {
		return "", errs.New(errs.Malformed, "replaces: the order shares no identifier with certificate %s", serial)
	}
	others, err := b.store.ACMEOrders(ctx, store.ACMEOrderFilter{Replaces: serial})
	if err != nil {
		return "", err
	}
	for i := range others {
		if b.Status(&others[i]) != store.StatusInvalid {
			return "", acme.Errorf(acme.AlreadyReplaced, errs.Conflict, "certificate %s is already being replaced by order %s", serial, others[i].ID)
		}
	}
	return serial, nil
}

// newOrderID returns an order identifier that sorts by creation time: 48
// bits of Unix milliseconds, then 80 random bits, in hex (which sorts as
// the bytes do). Orders are created by the thousand: in time order each
// new one lands on the last page of the store's indexes on the id,
// instead of a random page that the commit must write. 80 random bits
// keep them unguessable; they grant nothing anyway without the account key.
func newOrderID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

// newToken returns a challenge token (RFC 8555 §8.1: ≥128 bits, base64url).
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkLoad refuses a new order of n authorizations to an account that
// has made too many orders lately or would hold too many pending
// authorizations. Both are counted in the store, shared by every node.
func (b *Book) checkLoad(ctx context.Context, account string, n int) error {
	if b.o.Limits == nil {
		return nil
	}
	l := b.o.Limits.Settings()
	rate := l.OrdersPerAccount
	if rate.Off() {
		rate.Per = time.Hour
	}
	now := b.now()
	load, err := b.store.ACMEAccountLoad(ctx, account, now.Add(-rate.Per), now)
	switch {
	case err != nil:
		return err
	case !rate.Off() && load.OrdersSince >= rate.Count:
		return errs.Later(errs.New(errs.RateLimited, "account %s has made %d orders in the last %s (limit %s)",
			account, load.OrdersSince, rate.Per, rate), rate.Per/time.Duration(rate.Count))
	case load.PendingAuthzs+n > l.PendingAuthzsPerAccount:
		return errs.Later(errs.New(errs.RateLimited, "account %s holds %d pending authorizations, and may hold %d: complete or deactivate some first",
			account, load.PendingAuthzs, l.PendingAuthzsPerAccount), time.Minute)
	}
	return nil
}
