package home

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"time"

	"signet/internal/audit"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/store"
)

// Key URIs are stored in the database, which every node of a shared store
// reads and which more people may write than may run code on a node. So a
// stored URI never names the PKCS#11 module a node loads or where its PIN
// comes from: signet.toml's [tokens] does (kms refuses such URIs).
//
// Homes made before [tokens] existed may store URIs that name them (an
// older error message said to add ?module-path=). moveTokenSettings moves
// those settings into [tokens] once, on the first open of such a home;
// once signet.toml has a [tokens] table, a stored URI is rewritten only if
// signet.toml says the same already, so the database cannot add a module.

// moveTokenSettings is that migration. It may change cfg.
func moveTokenSettings(ctx context.Context, dir string, cfg *config.Config, st store.Store, u Unlock) error {
	uris, err := storedKeyURIs(ctx, st)
	if err != nil {
		return err
	}
	type rewrite struct {
		from, to, label string
		tok             config.Token
		pinValue        bool
	}
	var rewrites []rewrite
	add := map[string]config.Token{}
	for _, from := range uris {
		uri := kms.StripPINValue(from)
		pinValue := uri != from
		bare, label, tok, ok, err := kms.SplitURI(uri)
		if err != nil {
			// Left as it is: kms refuses it when it is used.
			slog.Warn("stored key URI not migrated", "uri", kms.Redact(from), "err", err)
			continue
		}
		if !ok && !pinValue {
			continue
		}
		if label == "" {
			if p, err := kms.ParseURI(bare); err == nil {
				label = p.Token
			}
		}
		ct := config.Token{Module: tok.Module, PIN: string(tok.PIN), Serial: tok.Serial}
		known, listed := cfg.Tokens[label]
		switch {
		case !ok:
		case listed:
			// signet.toml decides; the stored settings go.
			if known.Module != ct.Module && ct.Module != "" {
				slog.Warn("stored key URI names a PKCS#11 module other than signet.toml's; using signet.toml's", "uri", kms.Redact(from), "token", label, "module", known.Module)
			}
		case cfg.HasTokens:
			// Left as it is: kms refuses it when it is used.
			slog.Warn("stored key URI names a PKCS#11 module or PIN source that signet.toml does not list; signet will not use it. If they are right, list the token in signet.toml as [tokens.LABEL]",
				"uri", kms.Redact(from), "token", label)
			continue
		default:
			if prev, seen := add[label]; seen && prev != ct {
				return errs.New(errs.Conflict, "stored key URIs name token %q with different modules or PIN sources; list it in signet.toml as [tokens.%s] and start again", label, label)
			}
			add[label] = ct
		}
		if pinValue && !pinSourceFor(label, *cfg, add, u) {
			// Left as it is: kms refuses it when it is used.
			slog.Warn("stored key URI holds a PIN in the clear (pin-value), which signet never uses or copies. Give the token a PIN source (pin = \"env:VAR\", \"file:PATH\" or \"prompt\" in its [tokens.LABEL] of signet.toml, or --pin): the next start then removes the PIN from the database",
				"uri", kms.Redact(from), "token", label)
			continue
		}
		rewrites = append(rewrites, rewrite{from: from, to: bare, label: label, tok: ct, pinValue: pinValue})
	}

	if !cfg.HasTokens || len(add) > 0 {
		note := ""
		if len(add) > 0 {
			note = "Moved here from key URIs stored in the database on " + time.Now().UTC().Format(time.DateOnly) + "."
		}
		if err := config.AddTokens(dir, add, note); err != nil {
			if len(add) == 0 {
				// Only the marker: the next open tries again.
				slog.Warn("could not add the [tokens] table to signet.toml", "err", err)
				return nil
			}
			return err
		}
		for _, label := range slices.Sorted(maps.Keys(add)) {
			t := add[label]
			slog.Info("PKCS#11 token settings moved from stored key URIs to signet.toml", "token", label, "module", t.Module, "pin", t.PIN)
		}
		if cfg.Tokens == nil {
			cfg.Tokens = map[string]config.Token{}
		}
		maps.Copy(cfg.Tokens, add)
		cfg.HasTokens = true
	}
	for _, r := range rewrites {
		data, _ := json.Marshal(map[string]any{"from": kms.Redact(r.from), "to": r.to, "token": r.label,
			"module": r.tok.Module, "pin": r.tok.PIN, "pin_value_removed": r.pinValue})
		ev := audit.Event{Actor: "signet", Data: data}
		_, err := st.SetKeyURI(ctx, r.from, r.to, ev)
		if errs.KindOf(err) == errs.NotFound {
			continue // another node sharing the store rewrote it meanwhile
		}
		if err != nil {
			return errs.Wrap(errs.KindOf(err), err, "rewriting stored key URI %s", kms.Redact(r.from))
		}
		slog.Info("stored key URI rewritten without module and PIN settings", "from", kms.Redact(r.from), "to", r.to)
	}
	return nil
}

// storedKeyURIs lists every key URI of the store: authorities' and SSH CA keys'.
func storedKeyURIs(ctx context.Context, st store.Store) ([]string, error) {
	auths, err := st.Authorities(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, a := range auths {
		seen[a.KeyURI] = true
		keys, err := st.SSHKeys(ctx, a.Name)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			seen[k.KeyURI] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// pinSourceFor reports whether the token has a PIN source configured.
func pinSourceFor(label string, cfg config.Config, add map[string]config.Token, u Unlock) bool {
	return cfg.Tokens[label].PIN != "" || add[label].PIN != "" || cfg.Keys.PIN != "" || u.PIN != ""
}

// AdoptKeyURI takes a key URI an operator gave (a flag) and returns what
// may be stored: without module-path and pin-source. Once they open the
// token, it lists them in signet.toml's [tokens] (and in the open key
// manager). A token listed there already must be listed alike. A URI that
// names neither, of a token signet.toml does not list, is listed with this
// run's --module and --pin, if given: later commands need them no more.
func (h *Home) AdoptKeyURI(ctx context.Context, uri string) (string, error) {
	bare, label, tok, ok, err := kms.SplitURI(uri)
	if err != nil {
		return bare, err
	}
	if !ok {
		p, err := kms.ParseURI(bare)
		if err != nil || p.Token == "" || h.unlock.Module == "" && h.unlock.PIN == "" {
			return bare, nil
		}
		if _, listed := h.Config.Tokens[p.Token]; listed {
			return bare, nil // signet.toml decides; the flags are for this run
		}
		label, tok = p.Token, kms.Token{Module: h.unlock.Module, PIN: kms.Source(h.unlock.PIN), Serial: p.Serial}
	}
	ct := config.Token{Module: tok.Module, PIN: string(tok.PIN), Serial: tok.Serial}
	if cur, listed := h.Config.Tokens[label]; listed {
		if cur != ct {
			return "", errs.New(errs.Conflict, "key URI %s: token %q is listed differently in signet.toml ([tokens.%s]); drop module-path and pin-source from the URI, or edit signet.toml", uri, label, label)
		}
		return bare, nil
	}
	if err := h.Keys.AddToken(label, ct.KMS(h.Dir)); err != nil {
		return "", err
	}
	// A module or PIN that does not work is not written down.
	if _, err := h.Keys.List(ctx, kms.MarshalURI(&kms.URI{Token: label, Serial: tok.Serial})); err != nil {
		return "", err
	}
	if err := config.AddTokens(h.Dir, map[string]config.Token{label: ct}, ""); err != nil {
		return "", err
	}
	if h.Config.Tokens == nil {
		h.Config.Tokens = map[string]config.Token{}
	}
	h.Config.Tokens[label] = ct
	h.Config.HasTokens = true
	slog.Info("PKCS#11 token listed in signet.toml", "token", label, "module", ct.Module, "pin", ct.PIN)
	return bare, nil
}
