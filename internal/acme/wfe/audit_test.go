package wfe_test

import (
	"context"
	"path"
	"slices"
	"testing"

	xacme "golang.org/x/crypto/acme"

	"signet/internal/audit"
)

// TestOrderTransitionsAreAudited: an order's creation, its validations
// and a deactivation are in the audit log, each under the order's ID and
// by the account that asked; the certificate that finalizes the order has
// its issue event.
func TestOrderTransitionsAreAudited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(newKey(t))
	acct := e.register(c)
	actor := "acme:" + path.Base(acct.URI)
	o := e.readyOrder(c, "audited.signet.test", "www.audited.signet.test")
	ders, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr(t, nil, "audited.signet.test", "www.audited.signet.test"), true)
	if err != nil {
		t.Fatal(err)
	}
	issued := e.verify(ders, "audited.signet.test")
	other, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: "gone.signet.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeAuthorization(ctx, other.AuthzURLs[0]); err != nil {
		t.Fatal(err)
	}

	kinds := map[string][]string{}
	err = e.h.Store.Events(ctx, func(ev audit.Event) error {
		if ev.Actor == actor {
			kinds[ev.Subject] = append(kinds[ev.Subject], ev.Kind)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		subject string
		want    []string
	}{
		{path.Base(o.URI), []string{audit.KindACMEOrderCreate, audit.KindACMEAuthzValidate, audit.KindACMEAuthzValidate}},
		{path.Base(other.URI), []string{audit.KindACMEOrderCreate, audit.KindACMEAuthzDeactivate}},
		{issued.SerialNumber.Text(16), []string{audit.KindCertificateIssue}},
	} {
		if got := kinds[tc.subject]; !slices.Equal(got, tc.want) {
			t.Errorf("events of %s: %q, want %q", tc.subject, got, tc.want)
		}
	}
}
