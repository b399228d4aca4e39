package client

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/kms"
)

// Keys opens the client's keys: pkcs11: URIs sign on their token, file:
// URIs are encrypted software keys, generated when missing.
type Keys struct {
	*kms.Manager
	Type kms.KeyType // of keys generated here
}

// OpenOrGenerate opens the key at uri, generating a missing file: key;
// flag names the setting uri came from, for messages.
func (k Keys) OpenOrGenerate(ctx context.Context, uri, flag string) (crypto.Signer, error) {
	if p, ok := strings.CutPrefix(uri, "file:"); ok {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return nil, errs.Wrap(errs.Unavailable, err, "%s", flag)
			}
			return k.Generate(ctx, uri, k.Type)
		}
	} else if !strings.HasPrefix(uri, "pkcs11:") {
		return nil, errs.New(errs.Malformed, "%s must be a pkcs11: or file: URI", flag)
	}
	return k.Signer(ctx, uri)
}

// OnToken generates a new certificate key on a token.
func (k Keys) OnToken(ctx context.Context, uri string) (crypto.Signer, error) {
	if !strings.HasPrefix(uri, "pkcs11:") {
		return nil, errs.New(errs.Malformed, "--key-on-token must be a pkcs11: URI")
	}
	return k.Generate(ctx, uri, k.Type)
}

// NewClearKey generates a software key, to be written unencrypted.
func (k Keys) NewClearKey() (crypto.Signer, []byte, error) {
	priv, err := kms.NewSoftwareKey(k.Type)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, errs.Wrap(errs.Internal, err, "encoding the new key")
	}
	return priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteChain writes cert.pem, chain.pem and fullchain.pem (0644) into dir
// from a chain, leaf first.
func WriteChain(dir string, ders [][]byte) error {
	for _, w := range []struct {
		name string
		ders [][]byte
	}{{"cert.pem", ders[:1]}, {"chain.pem", ders[1:]}, {"fullchain.pem", ders}} {
		if err := WriteFile(filepath.Join(dir, w.name), 0o644, PEMCerts(w.ders...)); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile replaces path atomically with data.
func WriteFile(path string, mode os.FileMode, data []byte) error {
	return config.ReplaceFile(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// PEMCerts encodes DER certificates as PEM.
func PEMCerts(ders ...[]byte) []byte {
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return b
}
