package benchload

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"strings"

	"golang.org/x/crypto/ocsp"

	"signet/internal/config"
	"signet/internal/home"
)

// A Sample is one certificate drawn uniformly from an authority's
// inventory, with what an OCSP load needs to ask about it.
type Sample struct {
	Serial  string // lower-case hex, as the store has it
	Revoked bool
	// Path is the RFC 6960 GET path of a SHA-1 CertID request for it:
	// /ocsp/AUTHORITY/ and the request's base64, escaped.
	Path string
}

// SampleInventory draws n distinct certificates of authority uniformly
// (every certificate equally likely), in random order, by reading the
// home's database directly: rowids on SQLite (signet-benchload appends,
// so they run from 1 to about the count), TABLESAMPLE BERNOULLI on
// PostgreSQL. below, if set, keeps only serials that sort before it (the
// part of the inventory an OCSP leader's walk has pre-signed).
func SampleInventory(ctx context.Context, h *home.Home, authority string, n int, below string) ([]Sample, error) {
	rec, err := h.Store.Authority(ctx, authority)
	if err != nil {
		return nil, err
	}
	issuer, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		return nil, err
	}
	if below == "" {
		below = strings.Repeat("f", 64)
	}
	var out []Sample
	add := func(serial, status string) error {
		v, ok := new(big.Int).SetString(serial, 16)
		if !ok {
			return fmt.Errorf("benchload: the serial %q is not hex", serial)
		}
		der, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: v}, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
		if err != nil {
			return err
		}
		esc := strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(base64.StdEncoding.EncodeToString(der))
		out = append(out, Sample{Serial: serial, Revoked: status == "revoked", Path: "/ocsp/" + authority + "/" + esc})
		return nil
	}
	seen := map[string]bool{}
	if config.IsPostgres(h.Config.Store) {
		db, err := sql.Open("pgx", h.Config.Store)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		var rows float64
		if err := db.QueryRowContext(ctx, "SELECT reltuples FROM pg_class WHERE relname = 'certificates'").Scan(&rows); err != nil {
			return nil, err
		}
		pct := min(100, 100*2*float64(n)/max(rows, 1)) // twice n: some are above below
		r, err := db.QueryContext(ctx, `SELECT serial, status FROM certificates TABLESAMPLE BERNOULLI ($1)
			WHERE authority = $2 AND serial < $3`, pct, authority, below)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		for r.Next() {
			var s, st string
			if err := r.Scan(&s, &st); err != nil {
				return nil, err
			}
			if err := add(s, st); err != nil {
				return nil, err
			}
		}
		if err := r.Err(); err != nil {
			return nil, err
		}
		mrand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out[:min(n, len(out))], nil
	}
	db, err := sql.Open("sqlite", config.InHome(h.Dir, strings.TrimPrefix(h.Config.Store, "sqlite:"))+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var maxRow, count int64
	if err := db.QueryRowContext(ctx, "SELECT MAX(rowid), COUNT(*) FROM certificates WHERE authority = ? AND serial < ?", authority, below).Scan(&maxRow, &count); err != nil {
		return nil, err
	}
	st, err := db.PrepareContext(ctx, "SELECT serial, status FROM certificates WHERE rowid = ? AND authority = ? AND serial < ?")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	for len(out) < int(min(int64(n), count)) {
		i, err := rand.Int(rand.Reader, big.NewInt(maxRow))
		if err != nil {
			return nil, err
		}
		var s, status string
		if err := st.QueryRowContext(ctx, i.Int64()+1, authority, below).Scan(&s, &status); err == sql.ErrNoRows || seen[s] {
			continue
		} else if err != nil {
			return nil, err
		}
		seen[s] = true
		if err := add(s, status); err != nil {
			return nil, err
		}
	}
	return out, nil
}
