package main

import (
	"context"
	"fmt"
	"log/slog"

	"signet/internal/acme/eab"
	"signet/internal/acme/va"
	"signet/internal/acme/wfe"
	"signet/internal/home"
	"signet/internal/limits"
	"signet/internal/metrics"
)

// acmeFlags are serve's ACME flags.
type acmeFlags struct {
	resolver          string
	httpPort, tlsPort int
}

func (a *acmeFlags) register(f *flags) {
	f.StringVar(&a.resolver, "acme-resolver", "", "DNS server `HOST:PORT` for ACME validation (default: the system resolver)")
	f.IntVar(&a.httpPort, "acme-http-port", 80, "port http-01 validation connects to (`N`; change for test setups only)")
	f.IntVar(&a.tlsPort, "acme-tls-port", 443, "port tls-alpn-01 validation connects to (`N`; change for test setups only)")
}

// acmeServer builds the ACME front end of a home; it never serves the
// admin authority.
func acmeServer(ctx context.Context, h *home.Home, log *slog.Logger, a acmeFlags, adminAuthority string, lim *limits.Limits, m *metrics.ACME) (*wfe.WFE, error) {
	if a.httpPort <= 0 || a.httpPort > 65535 || a.tlsPort <= 0 || a.tlsPort > 65535 {
		return nil, badUsage("--acme-http-port and --acme-tls-port must be ports (1-65535)")
	}
	sealer, err := h.EABSealer()
	if err != nil {
		return nil, err
	}
	return wfe.New(ctx, wfe.Options{
		CA: h.CA, Store: h.Store, Log: log, AdminAuthority: adminAuthority, UnsealEAB: sealer.Open, Limits: lim, Metrics: m,
		AuthzReuse: h.Config.ACME.AuthzReuseWindow(),
		VA:         va.New(va.Options{Resolver: a.resolver, HTTPPort: a.httpPort, TLSPort: a.tlsPort}),
	})
}

func cmdACMEEABCreate(e *env, args []string) error {
	f := newFlags(e, "acme eab create")
	authority := f.String("authority", "", "authority `NAME` the key registers accounts with")
	asJSON := f.Bool("json", false, "print JSON")
	if rest, err := f.parse(args); err != nil {
		return err
	} else if len(rest) > 0 || *authority == "" {
		return badUsage("give --authority NAME and nothing else")
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	sealer, err := h.EABSealer()
	if err != nil {
		return err
	}
	kid, key, err := eab.Create(e.ctx, h.Store, sealer, *authority, "cli")
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]string{"kid": kid, "hmac_key": key, "authority": *authority})
	}
	fmt.Fprintf(e.stdout, "kid: %s\nhmac-key: %s\n(the HMAC key is shown only now; give both to one ACME client, e.g. certbot --eab-kid KID --eab-hmac-key KEY)\n", kid, key)
	return nil
}
