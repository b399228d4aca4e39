package main

import (
	"fmt"
	"time"

	"signet/internal/ca"
)

func cmdRevoke(e *env, args []string) error {
	f := newFlags(e, "revoke")
	reason := f.String("reason", "unspecified", "RFC 5280 `REASON`: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, aACompromise")
	asJSON := f.Bool("json", false, "print JSON")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return badUsage("give one SERIAL")
	}
	code, err := ca.ParseReason(*reason)
	if err != nil {
		return err
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	c, err := h.CA.Revoke(e.ctx, rest[0], code, "cli")
	if err != nil {
		return notFound(err, "no certificate %s in this home: signet list --all shows the serials it issued", rest[0])
	}
	if *asJSON {
		return writeJSON(e.stdout, ca.View(c, time.Now()))
	}
	fmt.Fprintf(e.stdout, "revoked %s (%s) at %s\n", c.Serial, ca.ReasonName(c.RevocationReason), c.RevokedAt.UTC().Format(time.RFC3339))
	return nil
}
