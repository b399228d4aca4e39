package home

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"os"
	"path/filepath"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/kms"
)

// AuditKeyFile is where a home keeps the verifier key of its audit key, in
// the note format `signet audit key` prints: public, for `audit verify`
// to check checkpoints with when given no key.
const AuditKeyFile = "audit-key.pub"

// CheckpointsFile is where serve appends every checkpoint it signs.
const CheckpointsFile = "checkpoints"

// AuditKeyURI names the audit key: beside the root key (in its directory,
// or on its token).
func (h *Home) AuditKeyURI(ctx context.Context) (string, error) {
	root, err := h.Store.Authority(ctx, ca.RootName)
	if err != nil {
		return "", err
	}
	return BesideKey(root.KeyURI, "audit"), nil
}

// AuditKey opens the Ed25519 key that signs audit checkpoints, generating
// it (with its key.generate event) in a home made before there was one,
// and writes its verifier key to AuditKeyFile.
func (h *Home) AuditKey(ctx context.Context, actor string) (crypto.Signer, string, error) {
	uri, err := h.AuditKeyURI(ctx)
	if err != nil {
		return nil, "", err
	}
	s, err := h.Keys.Signer(ctx, uri)
	if errs.KindOf(err) == errs.NotFound {
		s, err = h.GenerateSigner(ctx, uri, kms.Ed25519, actor)
	}
	if err != nil {
		return nil, "", errs.Wrap(errs.KindOf(err), err, "audit key %s", uri)
	}
	pub, ok := s.Public().(ed25519.PublicKey)
	if !ok {
		return nil, "", errs.New(errs.Rejected, "audit key %s is not an Ed25519 key: move it away and signet makes a new one", uri)
	}
	vkey, err := audit.VerifierKey(pub)
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(h.Dir, AuditKeyFile)
	if cur, err := os.ReadFile(path); err != nil || string(cur) != vkey+"\n" {
		if err := os.WriteFile(path, []byte(vkey+"\n"), 0o644); err != nil {
			return nil, "", errs.Wrap(errs.Unavailable, err, "write %s", path)
		}
	}
	return s, vkey, nil
}
