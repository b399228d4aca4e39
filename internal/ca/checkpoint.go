package ca

import (
	"crypto"
	"crypto/ed25519"

	"golang.org/x/mod/sumdb/note"

	"signet/internal/audit"
	"signet/internal/errs"
)

// SignCheckpoint signs an audit checkpoint with the audit key, an Ed25519
// key in a file or on a token, as a C2SP signed note (see package audit).
func SignCheckpoint(key crypto.Signer, c audit.Checkpoint) ([]byte, error) {
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return nil, errs.New(errs.Rejected, "the audit key is a %T, not an Ed25519 key", key.Public())
	}
	vkey, err := audit.VerifierKey(pub)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "audit verifier key")
	}
	msg, err := note.Sign(&note.Note{Text: audit.CheckpointText(v.Name(), c)}, noteSigner{key: key, name: v.Name(), hash: v.KeyHash()})
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "sign audit checkpoint")
	}
	return msg, nil
}

// noteSigner is a crypto.Signer holding an Ed25519 key as a note.Signer.
type noteSigner struct {
	key  crypto.Signer
	name string
	hash uint32
}

func (n noteSigner) Name() string    { return n.name }
func (n noteSigner) KeyHash() uint32 { return n.hash }
func (n noteSigner) Sign(msg []byte) ([]byte, error) {
	return n.key.Sign(nil, msg, crypto.Hash(0)) // Ed25519 signs the message itself
}
