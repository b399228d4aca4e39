package ca

import (
	"context"
	"strings"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// RFC 5280 CRLReason codes signet accepts. certificateHold (6) is not
// offered: a suspended certificate is a revoked one that comes back, and
// short lifetimes make holds pointless.
var reasons = map[string]int{
	"unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3,
	"superseded": 4, "cessationOfOperation": 5, "privilegeWithdrawn": 9, "aACompromise": 10,
}

// ParseReason maps an RFC 5280 reason name (case-insensitive) to its code.
func ParseReason(name string) (int, error) {
	for n, code := range reasons {
		if strings.EqualFold(n, name) {
			return code, nil
		}
	}
	return 0, errs.New(errs.Malformed, "revocation reason %q: use one of unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, aACompromise", name)
}

// ReasonName is the RFC 5280 name of a reason code.
func ReasonName(code int) string {
	for n, c := range reasons {
		if c == code {
			return n
		}
	}
	return "unknown"
}

// Revoke is the one revocation path: it records the revocation and its
// audit event durably. Whoever serves revocation status reads the store:
// in this process at once (Changed), in others at their next poll.
func (c *CA) Revoke(ctx context.Context, serial string, reason int, actor string) (store.Certificate, error) {
	if ReasonName(reason) == "unknown" {
		return store.Certificate{}, errs.New(errs.Malformed, "revocation reason code %d is not accepted", reason)
	}
	serial = strings.ToLower(strings.ReplaceAll(serial, ":", ""))
	at := c.now().UTC()
	ev := c.event(audit.Event{Kind: audit.KindCertificateRevoke, Actor: actor, Subject: serial}, map[string]any{"reason": ReasonName(reason), "code": reason})
	if err := c.store.Revoke(ctx, serial, at, reason, ev); err != nil {
		return store.Certificate{}, err
	}
	c.signalRevoke(serial)
	c.signalChange()
	return c.store.Certificate(ctx, serial)
}
