//go:build cgo

package kms

import (
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"signet/internal/errs"
)

// A module's C_Initialize state is per process and shared by everyone who
// loads it: crypto11 initializes a module on its first Configure and
// finalizes it on its last Close, and a direct miekg/pkcs11 context on the
// same module sees CKR_CRYPTOKI_ALREADY_INITIALIZED. kms therefore keeps one
// rule: a direct context lives only while a crypto11 Context on the same
// module is open (it is opened after and closed before it, and it never
// finalizes), and initMu serializes every Initialize/Finalize so a short
// probe of the token list cannot race crypto11. Nothing outside kms should
// use crypto11 or load PKCS#11 modules.
var initMu sync.Mutex

// PKCS11 reports whether this build can use keys on PKCS#11 tokens: only a
// build with cgo can load their modules.
const PKCS11 = true

// sessionsPerToken bounds concurrent signatures on one token; crypto11
// keeps one more session for the login.
const sessionsPerToken = 16

// Mechanisms and key types newer than miekg/pkcs11's constants (PKCS#11 3.0).
const (
	ckkECEdwards           = 0x40
	ckmECEdwardsKeyPairGen = 0x1055
	ckmEdDSA               = 0x1057
)

type tokenKey struct {
	module, token, serial string
	slot                  int64 // -1: not selected by slot
}

// token is one logged-in token: crypto11 for ECDSA and RSA (its session pool
// signs concurrently) and a direct context for what crypto11 cannot do
// (Ed25519, listing, attribute checks).
type token struct {
	module string
	label  string
	serial string
	slot   uint
	c11    *crypto11.Context
	p      *pkcs11.Ctx

	mu     sync.Mutex // guards the direct context's sessions
	closed bool
	idle   []pkcs11.SessionHandle
}

type slotToken struct {
	slot                 uint
	label, serial, model string
	flags                uint
}

// probeTokens lists the tokens a module offers. Caller holds initMu.
func probeTokens(module string) ([]slotToken, error) {
	p := pkcs11.New(module)
	if p == nil {
		return nil, errs.New(errs.Unavailable, "pkcs11: cannot load module %s", module)
	}
	defer p.Destroy()
	err := p.Initialize()
	var e pkcs11.Error
	switch {
	case err == nil:
		defer p.Finalize()
	case errors.As(err, &e) && e == pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED:
		// crypto11 holds it open for another token: leave it initialized.
	default:
		return nil, errs.Wrap(errs.Unavailable, err, "pkcs11: initializing module %s", module)
	}
	return listTokens(p, module)
}

// presentTokens probes module, which must exist, for its tokens.
func presentTokens(module string) ([]slotToken, error) {
	if _, err := os.Stat(module); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "pkcs11: cannot load module %s", module)
	}
	initMu.Lock()
	defer initMu.Unlock()
	return probeTokens(module)
}

// ListTokens lists the initialized tokens module offers, without logging
// in to any.
func ListTokens(module string) ([]TokenInfo, error) {
	present, err := presentTokens(module)
	if err != nil {
		return nil, err
	}
	out := make([]TokenInfo, len(present))
	for i, t := range present {
		out[i] = TokenInfo{Label: t.label, Serial: t.serial, Slot: t.slot, Model: t.model}
	}
	return out, nil
}

func listTokens(p *pkcs11.Ctx, module string) ([]slotToken, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "pkcs11: listing slots of module %s", module)
	}
	var out []slotToken
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue // pulled out meanwhile, or blank (SoftHSM's spare slot)
		}
		out = append(out, slotToken{slot: s, label: ti.Label, serial: ti.SerialNumber, model: ti.Model, flags: ti.Flags})
	}
	return out, nil
}

func (u *URI) selects(t slotToken) bool {
	switch {
	case u.Token != "":
		return t.label == u.Token && (u.Serial == "" || t.serial == u.Serial)
	case u.Serial != "":
		return t.serial == u.Serial
	case u.SlotID != nil:
		return t.slot == *u.SlotID
	}
	return false
}

func (u *URI) tokenName() string {
	switch {
	case u.Token != "":
		return fmt.Sprintf("%q", u.Token)
	case u.Serial != "":
		return fmt.Sprintf("with serial %q", u.Serial)
	case u.SlotID != nil:
		return fmt.Sprintf("in slot %d", *u.SlotID)
	}
	return "(none)"
}

// tokenConfig is the module, PIN source and serial that open the token u
// names: its entry in the configuration, else the defaults.
func (m *Manager) tokenConfig(u *URI) (module string, pin Source, serial string, err error) {
	m.mu.Lock()
	t, ok := m.config[u.Token]
	m.mu.Unlock()
	module, pin, serial = m.opts.Module, m.opts.PIN, u.Serial
	if !ok || u.Token == "" {
		return module, pin, serial, nil
	}
	if t.Serial != "" {
		if serial != "" && serial != t.Serial {
			return "", "", "", errs.New(errs.Malformed, "pkcs11: %s names serial %s, but [tokens.%s] in signet.toml says serial %s", MarshalURI(u), serial, u.Token, t.Serial)
		}
		serial = t.Serial
	}
	if t.Module != "" {
		module = t.Module
	}
	if t.PIN != "" {
		pin = t.PIN
	}
	return module, pin, serial, nil
}

// refuseTokenSettings refuses a URI that names its module or PIN source:
// those come from the node's configuration only (see Options).
func refuseTokenSettings(u *URI) error {
	if u.ModulePath == "" && u.PINSource == "" {
		return nil
	}
	return errs.New(errs.Rejected,
		"key URI %s names a PKCS#11 module or PIN source (module-path, pin-source): signet takes them only from the node's configuration, [tokens.LABEL] in signet.toml or --module and --pin",
		MarshalURI(u))
}

// openToken returns the logged-in token u names, opening it on first use.
func (m *Manager) openToken(u *URI) (*token, error) {
	// Before anything is loaded or read.
	if err := refuseTokenSettings(u); err != nil {
		return nil, err
	}
	module, pinSrc, serial, err := m.tokenConfig(u)
	if err != nil {
		return nil, err
	}
	if module == "" {
		label := u.Token
		if label == "" {
			label = "LABEL"
		}
		return nil, errs.New(errs.Malformed, "pkcs11: no module for %s: add [tokens.%s] module = \"/path/to/module.so\" to signet.toml, or give --module", MarshalURI(u), label)
	}
	if u.Token == "" && serial == "" && u.SlotID == nil {
		return nil, errs.New(errs.Malformed, "pkcs11: %s names no token: add token=LABEL", MarshalURI(u))
	}
	sel := *u
	sel.Serial = serial
	u = &sel
	key := tokenKey{module: module, token: u.Token, serial: u.Serial, slot: -1}
	if u.Token == "" && u.Serial == "" {
		key.slot = int64(*u.SlotID)
	}

	// One open at a time per Manager: opening is rare, and it keeps a
	// prompt from asking twice for the same PIN.
	m.openMu.Lock()
	defer m.openMu.Unlock()
	m.mu.Lock()
	t, ok := m.tokens[key]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, errs.New(errs.Unavailable, "key manager is closed")
	}
	if ok {
		return t, nil
	}

	present, err := presentTokens(module)
	if err != nil {
		return nil, err
	}
	var found *slotToken
	for i := range present {
		if u.selects(present[i]) {
			found = &present[i]
			break
		}
	}
	if found == nil {
		var names []string
		for _, p := range present {
			names = append(names, fmt.Sprintf("%q (serial %s, slot %d)", p.label, p.serial, p.slot))
		}
		list := "none"
		if len(names) > 0 {
			list = strings.Join(names, ", ")
		}
		return nil, errs.New(errs.Unavailable, "pkcs11: no token %s in module %s; tokens present: %s", u.tokenName(), module, list)
	}

	if pinSrc == Unlock {
		pinSrc = givenSource(found.label)
	}
	pin, err := m.secret(pinSrc, fmt.Sprintf("PIN for token %q", found.label))
	if err != nil {
		return nil, err
	}

	initMu.Lock()
	defer initMu.Unlock()
	// Select by serial when there is one: labels need not be unique.
	cfg := &crypto11.Config{Path: module, Pin: string(pin), MaxSessions: sessionsPerToken}
	if found.serial != "" {
		cfg.TokenSerial = found.serial
	} else {
		cfg.TokenLabel = found.label
	}
	c11, err := crypto11.Configure(cfg)
	if err != nil {
		var e pkcs11.Error
		if errors.As(err, &e) && (e == pkcs11.CKR_PIN_INCORRECT || e == pkcs11.CKR_PIN_LEN_RANGE) {
			m.forget(pinSrc)
			return nil, errs.New(errs.Unauthorized, "pkcs11: wrong PIN for token %q", found.label)
		}
		return nil, p11Error(err, "pkcs11: log in to token %q in module %s", found.label, module)
	}
	p := pkcs11.New(module)
	if p == nil {
		c11.Close()
		return nil, errs.New(errs.Unavailable, "pkcs11: cannot load module %s", module)
	}
	if err := p.Initialize(); err != nil {
		var e pkcs11.Error
		if !errors.As(err, &e) || e != pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			p.Destroy()
			c11.Close()
			return nil, errs.Wrap(errs.Internal, err, "pkcs11: module %s not initialized after login", module)
		}
	}
	t = &token{module: module, label: found.label, serial: found.serial, slot: found.slot, c11: c11, p: p}
	// Slot numbers may change across C_Initialize: find the token again.
	if now, err := listTokens(p, module); err == nil {
		for _, s := range now {
			if s.serial == found.serial && s.label == found.label {
				t.slot = s.slot
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed { // Close ran meanwhile; initMu is still ours
		p.Destroy()
		c11.Close()
		return nil, errs.New(errs.Unavailable, "key manager is closed")
	}
	m.tokens[key] = t
	return t, nil
}

// close releases the direct context first, then crypto11's, which may
// finalize the module.
func (t *token) close() error {
	t.mu.Lock()
	t.closed = true
	for _, h := range t.idle {
		_ = t.p.CloseSession(h)
	}
	t.idle = nil
	t.p.Destroy() // never Finalize: the module belongs to crypto11
	t.mu.Unlock()
	initMu.Lock()
	defer initMu.Unlock()
	return t.c11.Close()
}

// session hands out a session of the direct context; it is logged in
// because PKCS#11 login state is per application, not per session.
func (t *token) session() (pkcs11.SessionHandle, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, errs.New(errs.Unavailable, "pkcs11: token %q is closed", t.label)
	}
	if n := len(t.idle); n > 0 {
		h := t.idle[n-1]
		t.idle = t.idle[:n-1]
		return h, nil
	}
	h, err := t.p.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, p11Error(err, "pkcs11: open session on token %q", t.label)
	}
	return h, nil
}

func (t *token) release(h pkcs11.SessionHandle) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		// The context is gone and with it the session.
	case len(t.idle) < sessionsPerToken:
		t.idle = append(t.idle, h)
	default:
		_ = t.p.CloseSession(h)
	}
}

// find returns the handles of objects matching template.
func (t *token) find(h pkcs11.SessionHandle, template []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := t.p.FindObjectsInit(h, template); err != nil {
		return nil, err
	}
	var all []pkcs11.ObjectHandle
	for {
		objs, _, err := t.p.FindObjects(h, 64)
		if err != nil {
			_ = t.p.FindObjectsFinal(h)
			return nil, err
		}
		all = append(all, objs...)
		if len(objs) == 0 {
			break
		}
	}
	return all, t.p.FindObjectsFinal(h)
}

// requireMechanism refuses early, with the mechanism's name, what the token
// cannot do; bits > 0 also checks the key size the token allows.
func (t *token) requireMechanism(op string, mech uint, name string, bits int) error {
	list, err := t.p.GetMechanismList(t.slot)
	if err != nil {
		return p11Error(err, "%s: listing mechanisms", op)
	}
	for _, m := range list {
		if m.Mechanism != mech {
			continue
		}
		if bits > 0 {
			info, err := t.p.GetMechanismInfo(t.slot, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)})
			if err == nil && info.MaxKeySize > 0 && (uint(bits) < info.MinKeySize || uint(bits) > info.MaxKeySize) {
				return errs.New(errs.Rejected, "%s: token %q does %s only for %d to %d bit keys", op, t.label, name, info.MinKeySize, info.MaxKeySize)
			}
		}
		return nil
	}
	return errs.New(errs.Rejected, "%s: token %q does not offer mechanism %s", op, t.label, name)
}

func (m *Manager) generatePKCS11(uri string, kt KeyType) (crypto.Signer, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if u.Object == "" {
		return nil, errs.New(errs.Malformed, "pkcs11: generate %s: add object=NAME, the new key's label", uri)
	}
	if u.Type != "" && u.Type != "private" {
		return nil, errs.New(errs.Malformed, "pkcs11: generate %s: type=%s is not a key pair", uri, u.Type)
	}
	t, err := m.openToken(u)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("pkcs11: generate %s key %q on token %q", kt, u.Object, t.label)

	h, err := t.session()
	if err != nil {
		return nil, err
	}
	defer t.release(h)
	if objs, err := t.find(h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, u.Object)}); err != nil {
		return nil, p11Error(err, "%s: looking for existing objects", op)
	} else if len(objs) > 0 {
		return nil, errs.New(errs.Conflict, "%s: an object labelled %q exists already", op, u.Object)
	}
	id := u.ID
	if len(id) == 0 {
		id = make([]byte, 16)
		rand.Read(id)
	}
	if objs, err := t.find(h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, id)}); err != nil {
		return nil, p11Error(err, "%s: looking for existing objects", op)
	} else if len(objs) > 0 {
		return nil, errs.New(errs.Conflict, "%s: an object with id %x exists already", op, id)
	}

	if kt == Ed25519 {
		if err := t.requireMechanism(op, ckmECEdwardsKeyPairGen, "CKM_EC_EDWARDS_KEY_PAIR_GEN", 0); err != nil {
			return nil, err
		}
		if err := t.requireMechanism(op, ckmEdDSA, "CKM_EDDSA", 0); err != nil {
			return nil, err
		}
		return t.generateEd25519(h, op, u.Object, id)
	}

	// The private half: on the token, for signing only, never readable.
	pub, _ := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(u.Object))
	priv, _ := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(u.Object))
	for attr, v := range map[crypto11.AttributeType]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true, pkcs11.CKA_SIGN: true,
		pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false,
		// Tokens default these differently (SoftHSM turns them on); a CA
		// key only signs.
		pkcs11.CKA_DECRYPT: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false,
	} {
		if err := priv.Set(attr, v); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "%s", op)
		}
	}
	var s crypto11.Signer
	switch kt {
	case ECDSAP256, ECDSAP384:
		if err := t.requireMechanism(op, pkcs11.CKM_ECDSA_KEY_PAIR_GEN, "CKM_ECDSA_KEY_PAIR_GEN", 0); err != nil {
			return nil, err
		}
		curve := elliptic.P256()
		if kt == ECDSAP384 {
			curve = elliptic.P384()
		}
		s, err = t.c11.GenerateECDSAKeyPairWithAttributes(pub, priv, curve)
		err = mechError(err, op, "CKM_ECDSA_KEY_PAIR_GEN")
	default:
		bits := kt.rsaBits()
		if err := t.requireMechanism(op, pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, "CKM_RSA_PKCS_KEY_PAIR_GEN", bits); err != nil {
			return nil, err
		}
		_ = pub.Set(pkcs11.CKA_ENCRYPT, false)
		s, err = t.c11.GenerateRSAKeyPairWithAttributes(pub, priv, bits)
		err = mechError(err, op, "CKM_RSA_PKCS_KEY_PAIR_GEN")
	}
	if err != nil {
		return nil, err
	}
	return &p11Signer{Signer: s, what: fmt.Sprintf("key %q on token %q", u.Object, t.label)}, nil
}

func (m *Manager) openPKCS11(uri string) (crypto.Signer, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if u.Object == "" && len(u.ID) == 0 {
		return nil, errs.New(errs.Malformed, "pkcs11: %s names no key: add object=LABEL or id=...", uri)
	}
	if u.Type != "" && u.Type != "private" {
		return nil, errs.New(errs.Malformed, "pkcs11: %s: type=%s cannot sign; use type=private or leave it out", uri, u.Type)
	}
	t, err := m.openToken(u)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("key %s on token %q", keyName(u), t.label)
	op := "pkcs11: open " + what

	h, err := t.session()
	if err != nil {
		return nil, err
	}
	defer t.release(h)
	k, err := t.privateKey(h, u, op)
	if err != nil {
		return nil, err
	}
	keyType, id, label := k.keyType, k.id, k.label

	if keyType == ckkECEdwards {
		pub, err := t.publicKey(h, keyType, id, label)
		if err != nil {
			return nil, p11Error(err, "%s: finding its public key", op)
		}
		edPub, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, errs.New(errs.Rejected, "%s: an Edwards key that is not Ed25519", op)
		}
		return &edSigner{tok: t, handle: k.handle, pub: edPub, what: what}, nil
	}
	if keyType != pkcs11.CKK_EC && keyType != pkcs11.CKK_RSA {
		return nil, errs.New(errs.Rejected, "%s: key type %#x cannot be used; signet signs with ECDSA, RSA and Ed25519", op, keyType)
	}
	// crypto11 needs a label or an id to pair the halves; use the key's own.
	if len(id) == 0 {
		id = nil
	}
	if len(label) == 0 {
		label = nil
	}
	s, err := t.c11.FindKeyPair(id, label)
	if err != nil {
		return nil, p11Error(err, "%s", op)
	}
	if s == nil || s.Public() == nil {
		return nil, errs.New(errs.NotFound, "%s: no public key next to it on token %q", op, t.label)
	}
	return &p11Signer{Signer: s, what: what}, nil
}

// p11Key is the private key a URI names, with the attributes that pair it
// with its public key and certificates.
type p11Key struct {
	handle    pkcs11.ObjectHandle
	keyType   uint
	id, label []byte
}

// privateKey finds the one private key u names (by object and/or id).
func (t *token) privateKey(h pkcs11.SessionHandle, u *URI, op string) (p11Key, error) {
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}
	if u.Object != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, u.Object))
	}
	if len(u.ID) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, u.ID))
	}
	objs, err := t.find(h, tmpl)
	if err != nil {
		return p11Key{}, p11Error(err, "%s", op)
	}
	switch {
	case len(objs) == 0:
		return p11Key{}, errs.New(errs.NotFound, "%s: no such private key", op)
	case len(objs) > 1:
		return p11Key{}, errs.New(errs.Conflict, "%s: %d private keys match; add id=... to pick one", op, len(objs))
	}
	attrs, err := t.p.GetAttributeValue(h, objs[0], []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
	})
	if err != nil {
		return p11Key{}, p11Error(err, "%s: reading attributes", op)
	}
	return p11Key{handle: objs[0], keyType: ulong(attrs[0].Value), id: attrs[1].Value, label: attrs[2].Value}, nil
}

func keyName(u *URI) string {
	switch {
	case u.Object != "" && len(u.ID) > 0:
		return fmt.Sprintf("%q (id %x)", u.Object, u.ID)
	case u.Object != "":
		return fmt.Sprintf("%q", u.Object)
	}
	return fmt.Sprintf("with id %x", u.ID)
}

// p11Signer names the key and token in the errors crypto11 returns.
type p11Signer struct {
	crypto11.Signer
	what string
}

func (s *p11Signer) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := s.Signer.Sign(r, digest, opts)
	if err != nil {
		return nil, p11Error(err, "pkcs11: sign with %s", s.what)
	}
	return sig, nil
}

// mechError names the mechanism when the token refuses a generation.
func mechError(err error, op, mech string) error {
	if err == nil {
		return nil
	}
	e := p11Error(err, "%s", op)
	if errs.KindOf(e) == errs.Rejected {
		return errs.Wrap(errs.Rejected, err, "%s: token refused %s", op, mech)
	}
	return e
}

// p11Error gives a PKCS#11 failure the kind a caller can act on.
func p11Error(err error, format string, args ...any) error {
	var se *errs.Error
	if errors.As(err, &se) {
		return err
	}
	kind := errs.Internal
	var e pkcs11.Error
	if errors.As(err, &e) {
		switch e {
		case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LOCKED, pkcs11.CKR_PIN_EXPIRED, pkcs11.CKR_PIN_LEN_RANGE,
			pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_USER_PIN_NOT_INITIALIZED:
			kind = errs.Unauthorized
		case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_KEY_TYPE_INCONSISTENT,
			pkcs11.CKR_KEY_SIZE_RANGE, pkcs11.CKR_TEMPLATE_INCONSISTENT, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID,
			pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED, pkcs11.CKR_CURVE_NOT_SUPPORTED, pkcs11.CKR_DOMAIN_PARAMS_INVALID,
			pkcs11.CKR_FUNCTION_NOT_SUPPORTED, pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_FUNCTION_REJECTED:
			kind = errs.Rejected
		case pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_MEMORY,
			pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_SESSION_COUNT,
			pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_TOKEN_NOT_RECOGNIZED:
			kind = errs.Unavailable
		}
	} else if strings.Contains(err.Error(), "was not found") {
		kind = errs.NotFound // crypto11's FindKeyPair
	}
	return errs.Wrap(kind, err, format, args...)
}

// ulong decodes a CK_ULONG attribute, which is in host byte order.
func ulong(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return ^uint(0)
}
