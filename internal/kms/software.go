package kms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/youmark/pkcs8"

	"signet/internal/errs"
)

const pemEncrypted = "ENCRYPTED PRIVATE KEY"

// scrypt N=2^14, r=8, p=1 is the usual interactive setting. It is also the
// largest N with r=8 that OpenSSL's default 32 MiB scrypt memory limit
// accepts, and OpenSSL reading our files is part of the contract.
var pkcs8Opts = &pkcs8.Opts{
	Cipher: pkcs8.AES256CBC,
	KDFOpts: pkcs8.ScryptOpts{
		SaltSize:                 16,
		CostParameter:            1 << 14,
		BlockSize:                8,
		ParallelizationParameter: 1,
	},
}

// filePath resolves a file: URI against Options.Dir.
func (m *Manager) filePath(uri string) (string, error) {
	p := uri[len("file:"):]
	if strings.HasPrefix(p, "///") { // file:///abs/path
		p = p[2:]
	}
	if p == "" {
		return "", errs.New(errs.Malformed, "key URI %q: empty path", Redact(uri))
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(m.opts.Dir, p)
	}
	p = filepath.Clean(p)
	if m.opts.Dir != "" && !within(m.opts.Dir, p) {
		// Key URIs are stored in the database: its writers must not point
		// a node at files elsewhere.
		return "", errs.New(errs.Rejected, "software key %s is outside the home %s: keep software keys in the home and name them by a relative path (file:keys/NAME.key)", p, m.opts.Dir)
	}
	return p, nil
}

// within reports whether path is dir or below it.
func within(dir, path string) bool {
	d, err1 := filepath.Abs(dir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func (m *Manager) generateFile(uri string, t KeyType) (crypto.Signer, error) {
	path, err := m.filePath(uri)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("software: generate %s key %s", t, path)
	if _, err := os.Lstat(path); err == nil {
		return nil, errs.New(errs.Conflict, "%s: the file exists already; signet never overwrites a key", op)
	}
	pass, err := m.newSecret(m.opts.Passphrase, "passphrase for key "+path)
	if err != nil {
		return nil, err
	}
	if err := CheckLength(pass, MinPassphrase, "passphrase for the new key "+path, m.opts.Passphrase); err != nil {
		return nil, err
	}
	priv, err := NewSoftwareKey(t)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "%s", op)
	}
	der, err := pkcs8.MarshalPrivateKey(priv, pass, pkcs8Opts)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "%s: encrypting", op)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemEncrypted, Bytes: der})
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "%s", op)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, errs.New(errs.Conflict, "%s: the file exists already; signet never overwrites a key", op)
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "%s", op)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, errs.Wrap(errs.Unavailable, err, "%s: writing", op)
	}
	return priv, nil
}

// NewSoftwareKey generates a key of type t in memory. The Manager writes
// the keys it generates encrypted; a caller holding a key from here (a
// subject key that signet issues a certificate for) decides where it goes.
func NewSoftwareKey(t KeyType) (crypto.Signer, error) {
	if _, err := ParseKeyType(string(t)); err != nil {
		return nil, err
	}
	switch t {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return rsa.GenerateKey(rand.Reader, t.rsaBits())
}

func (m *Manager) openFile(uri string) (crypto.Signer, error) {
	path, err := m.filePath(uri)
	if err != nil {
		return nil, err
	}
	op := "software: open key " + path
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errs.Wrap(errs.NotFound, err, "%s", op)
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "%s", op)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemEncrypted {
		return nil, errs.New(errs.Malformed, "%s: not a PEM %q block; signet keeps software keys encrypted", op, pemEncrypted)
	}
	src := m.opts.Passphrase
	if src == Unlock {
		src = givenSource("")
	}
	pass, err := m.secret(src, "passphrase for key "+path)
	if err != nil {
		return nil, err
	}
	key, err := parsePKCS8(block.Bytes, pass)
	if err != nil {
		if strings.Contains(err.Error(), "incorrect password") {
			m.forget(src)
			return nil, errs.New(errs.Unauthorized, "%s: wrong passphrase for %s", op, path)
		}
		return nil, errs.Wrap(errs.Malformed, err, "%s", op)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, errs.New(errs.Rejected, "%s: a %T cannot sign", op, key)
	}
	return s, nil
}

// parsePKCS8 turns the decrypting library's panics on malformed input (it
// decrypts CBC without checking the length) into errors.
func parsePKCS8(der, pass []byte) (key any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt encrypted key: %v", r)
		}
	}()
	key, _, err = pkcs8.ParsePrivateKey(der, pass)
	return key, err
}
