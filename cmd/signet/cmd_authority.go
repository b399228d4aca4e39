package main

import (
	"cmp"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/home"
	"signet/internal/kms"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
)

var unlockNone home.Unlock

func cmdAuthorityAdd(e *env, args []string) error {
	f := newFlags(e, "authority add")
	var u unlockFlags
	u.register(f)
	var allowDNS, allowIP, allowEmail, allowPrincipal listFlag
	purpose := f.String("purpose", "", "`PURPOSE`: tls-server, tls-client, xmpp, vpn, libvirt, ssh-host, ssh-user")
	var kf keyFlags
	kf.register(f, "generate the authority's key (beside the root key: same token, or an encrypted file)")
	f.Var(&allowDNS, "allow-dns", "DNS names the authority may certify: example.org (it and below), .example.org (below only), * (any)")
	f.Var(&allowIP, "allow-ip", "IP ranges the authority may certify (CIDR, or * for any)")
	f.Var(&allowEmail, "allow-email", "email addresses (user@domain) or domains the authority may certify")
	f.Var(&allowPrincipal, "allow-principal", "SSH principals (host or user names) an ssh-host or ssh-user authority may certify; * for any")
	wildcards := f.Bool("wildcards", false, "allow wildcard DNS names (*.example.org)")
	validity := f.String("validity", "", "default leaf `DURATION` (30d; ssh-host 52w, ssh-user 1d)")
	maxValidity := f.String("max-validity", "", "maximum leaf `DURATION` (90d; ssh-host 104w, ssh-user 52w)")
	cn := f.String("cn", "", "authority certificate common `NAME`")
	baseURL := f.String("base-url", "", "`URL` prefix its certificates name for CRLs, OCSP and the issuer (default from signet.toml: http://127.0.0.1:8080)")
	shards := f.Int("shards", 16, "CRL shards its certificates are spread over")
	acme := f.Bool("acme", false, "serve it over ACME (off by default; never for the admin authority)")
	selfSigned := f.Bool("self-signed", false, "make the authority its own trust anchor, not the root's child: a relying party that installs\n"+
		"its certificate ('signet root --authority NAME') trusts this authority's certificates and no other's.\n"+
		"For software that cannot trust an intermediate alone (OpenVPN, libvirt). Lives 20 years; if its key is\n"+
		"lost, every relying party must install a new anchor and every certificate be re-issued")
	asJSON := f.Bool("json", false, "print JSON")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return badUsage("give the authority NAME")
	}
	if err := kf.check(); err != nil {
		return err
	}
	p, err := profile.ParsePurpose(*purpose)
	if err != nil {
		return err
	}
	defValidity, maxDefault := "30d", "90d"
	switch p {
	case profile.SSHHost:
		defValidity, maxDefault = "52w", "104w"
	case profile.SSHUser:
		defValidity, maxDefault = "1d", "52w"
	}
	def, err := config.ParseDuration(cmp.Or(*validity, defValidity))
	if err != nil {
		return err
	}
	max, err := config.ParseDuration(cmp.Or(*maxValidity, maxDefault))
	if err != nil {
		return err
	}
	pol := policy.Policy{DNS: allowDNS, IP: allowIP, Email: allowEmail, Principals: allowPrincipal, Wildcards: *wildcards}
	if p.IsSSH() && len(allowPrincipal) == 0 {
		return badUsage("give the principals the authority may certify: --allow-principal NAME ('*' permits any)")
	}
	if len(allowDNS)+len(allowIP)+len(allowEmail)+len(allowPrincipal) == 0 {
		return badUsage("give the name policy: --allow-dns, --allow-ip and/or --allow-email ('*' permits any)")
	}
	h, err := openHome(e, f, u.unlock())
	if err != nil {
		return err
	}
	defer h.Close()
	spec := ca.AuthoritySpec{
		Name: rest[0], Purpose: p, CommonName: *cn, Policy: pol,
		DefaultValidity: def, MaxValidity: max, BaseURL: *baseURL, Shards: *shards, ACME: *acme, SelfSigned: *selfSigned, Actor: "cli",
	}
	if *acme {
		if err := h.CheckACME(spec.Name); err != nil {
			return err
		}
	}
	// Whatever CreateAuthority would refuse is refused before --generate
	// writes the key: a corrected retry would find it exists already.
	if _, err := h.CA.CheckAuthority(e.ctx, spec); err != nil {
		return err
	}
	if spec.KeyURI, err = kf.uri(e.ctx, h, func() (string, error) { return rest[0], nil }); err != nil {
		return err
	}
	rec, err := h.CA.CreateAuthority(e.ctx, spec)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, authorityJSON(rec))
	}
	fmt.Fprintf(e.stdout, "added authority %q (purpose %s, key %s, ACME %s)\npolicy: %s\n", rec.Name, rec.Purpose, kms.Redact(rec.KeyURI), onOff(rec.ACME), pol)
	switch {
	case p.IsSSH():
		fmt.Fprintf(e.stdout, "install the output of 'signet ssh trust --authority %s' where the CA must be trusted\n", rec.Name)
	case ca.SelfSigned(rec):
		fmt.Fprintf(e.stdout, "self-signed: install the output of 'signet root --authority %s' where only this authority must be trusted\n", rec.Name)
	}
	return nil
}

type authorityOut struct {
	Name            string          `json:"name"`
	Purpose         string          `json:"purpose"`
	Key             string          `json:"key"`
	Subject         string          `json:"subject"`
	NotAfter        time.Time       `json:"not_after"`
	Policy          json.RawMessage `json:"policy,omitempty"`
	DefaultValidity string          `json:"default_validity,omitempty"`
	MaxValidity     string          `json:"max_validity,omitempty"`
	ACME            bool            `json:"acme"`
	RequireEAB      bool            `json:"require_eab"`
	Enabled         bool            `json:"enabled"`
	SelfSigned      bool            `json:"self_signed,omitempty"`
}

func authorityJSON(a store.Authority) authorityOut {
	o := authorityOut{Name: a.Name, Purpose: a.Purpose, Key: kms.Redact(a.KeyURI), Policy: a.Policy, ACME: a.ACME, RequireEAB: a.RequireEAB, Enabled: !a.Disabled, SelfSigned: ca.SelfSigned(a)}
	if a.DefaultValidity > 0 {
		o.DefaultValidity, o.MaxValidity = a.DefaultValidity.String(), a.MaxValidity.String()
	}
	if c, err := x509.ParseCertificate(a.CertDER); err == nil {
		o.Subject, o.NotAfter = c.Subject.String(), c.NotAfter.UTC()
	}
	return o
}

func cmdAuthorityList(e *env, args []string) error {
	f := newFlags(e, "authority list")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	list, err := h.Store.Authorities(e.ctx)
	if err != nil {
		return err
	}
	out := make([]authorityOut, len(list))
	for i, a := range list {
		out[i] = authorityJSON(a)
	}
	if *asJSON {
		return writeJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPURPOSE\tKEY\tNOT AFTER\tACME\tEAB\tPOLICY")
	for _, a := range out {
		pol := "-"
		if len(a.Policy) > 0 {
			var p policy.Policy
			if json.Unmarshal(a.Policy, &p) == nil {
				pol = p.String()
			}
		}
		name := a.Name
		if !a.Enabled {
			name += " (disabled)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, a.Purpose, a.Key, a.NotAfter.Format("2006-01-02"), onOff(a.ACME), onOff(a.RequireEAB), pol)
	}
	return tw.Flush()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// cmdAuthoritySet changes an authority's settings: each flag given is a
// setting to change, the others stay as they are.
func cmdAuthoritySet(e *env, args []string) error {
	f := newFlags(e, "authority set")
	var ch store.AuthorityChange
	f.Var(optBool{&ch.ACME}, "acme", "serve the authority over ACME: `true` or false (never the admin authority)")
	f.Var(optBool{&ch.RequireEAB}, "require-eab", "new ACME accounts need an external account binding: `true` or false")
	f.Var(optBool{&ch.Enabled}, "enabled", "in service: `true` or false (out of service it issues nothing; its certificate, CRLs and OCSP stay served)")
	return authoritySet(e, f, args, &ch)
}

// cmdAuthorityEnable and cmdAuthorityDisable are authority set --enabled.
func cmdAuthorityEnable(e *env, args []string) error {
	on := true
	return authoritySet(e, newFlags(e, "authority enable"), args, &store.AuthorityChange{Enabled: &on})
}

func cmdAuthorityDisable(e *env, args []string) error {
	off := false
	return authoritySet(e, newFlags(e, "authority disable"), args, &store.AuthorityChange{Enabled: &off})
}

// authoritySet applies ch, which f's flags may fill, to the authority args name.
func authoritySet(e *env, f *flags, args []string, ch *store.AuthorityChange) error {
	asJSON := f.Bool("json", false, "print JSON")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return badUsage("give the authority NAME")
	}
	if ch.Empty() {
		return badUsage("give a setting to change: --acme=true|false, --require-eab=true|false, --enabled=true|false")
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	rec, changed, err := h.ChangeAuthority(e.ctx, rest[0], *ch, "cli")
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, authorityJSON(rec))
	}
	verb := "changed"
	if !changed {
		verb = "unchanged"
	}
	service := ""
	if ch.Enabled != nil || rec.Disabled { // said when asked about or out of service
		service = inService(rec) + ", "
	}
	fmt.Fprintf(e.stdout, "authority %q %s: %sACME %s, EAB %s\n", rec.Name, verb, service, onOff(rec.ACME), onOff(rec.RequireEAB))
	return nil
}

func inService(a store.Authority) string {
	if a.Disabled {
		return "disabled"
	}
	return "enabled"
}

// optBool is a boolean flag that tells whether it was given: --acme,
// --acme=true and --acme=false set it, leaving it out leaves it nil.
type optBool struct{ p **bool }

func (o optBool) String() string {
	if o.p == nil || *o.p == nil {
		return ""
	}
	return strconv.FormatBool(**o.p)
}

func (o optBool) Set(v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("want true or false, not %q", v)
	}
	*o.p = &b
	return nil
}

func (o optBool) IsBoolFlag() bool { return true }

func cmdKeyGenerate(e *env, args []string) error {
	f := newFlags(e, "key generate")
	var u unlockFlags
	u.register(f)
	uri := f.String("uri", "", "key `URI`: pkcs11:token=T;object=NAME (generated on the token) or file:PATH (encrypted software key)")
	keyType := f.String("type", "ecdsa-p256", "key `TYPE`: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *uri == "" {
		return badUsage("--uri is required")
	}
	kt, err := kms.ParseKeyType(*keyType)
	if err != nil {
		return err
	}
	h, keys, bare, done, err := keyContext(e, f, u, *uri)
	if err != nil {
		return err
	}
	defer done()
	var signer crypto.Signer
	if h != nil {
		signer, err = h.GenerateSigner(e.ctx, bare, kt, "cli") // audited
	} else {
		signer, err = keys.Generate(e.ctx, bare, kt)
	}
	if err != nil {
		return err
	}
	pubPEM, err := publicPEM(signer.Public())
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]string{"uri": bare, "type": string(kt), "public_key": pubPEM})
	}
	fmt.Fprintf(e.stdout, "generated %s key %s\n%s", kt, bare, pubPEM)
	return nil
}

// keyContext gives key commands a key manager and uri as it may be stored:
// the home's when a home exists (h is then that home, which audits key
// events and lists the token uri names a module or PIN source for in its
// signet.toml), else one from the flags and uri alone (h is nil).
func keyContext(e *env, f *flags, u unlockFlags, uri string) (*home.Home, *kms.Manager, string, func(), error) {
	if dir := f.homeDir(); home.Exists(dir) {
		h, err := home.Open(e.ctx, dir, u.unlock())
		if err != nil {
			return nil, nil, "", nil, err
		}
		bare, err := h.AdoptKeyURI(e.ctx, uri)
		if err != nil {
			h.Close()
			return nil, nil, "", nil, err
		}
		return h, h.Keys, bare, func() { h.Close() }, nil
	}
	keys, bare, err := home.KeyManager(u.unlock(), uri)
	if err != nil {
		return nil, nil, "", nil, err
	}
	return nil, keys, bare, func() { keys.Close() }, nil
}

func cmdKeyList(e *env, args []string) error {
	f := newFlags(e, "key list")
	var u unlockFlags
	u.register(f)
	uri := f.String("uri", "", "token `URI`, e.g. pkcs11:token=ca (default: every token of the modules)")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *uri == "" {
		return listTokens(e, f, u, *asJSON)
	}
	if !strings.HasPrefix(*uri, "pkcs11:") {
		return badUsage("--uri must name a token: pkcs11:token=LABEL")
	}
	_, keys, bare, done, err := keyContext(e, f, u, *uri)
	if err != nil {
		return err
	}
	defer done()
	list, err := keys.List(e.ctx, bare)
	if err != nil {
		return err
	}
	if *asJSON {
		if list == nil {
			list = []kms.KeyInfo{}
		}
		return writeJSON(e.stdout, list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "URI\tTYPE\tSENSITIVE\tEXTRACTABLE")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\n", k.URI, k.Type, k.Sensitive, k.Extractable)
	}
	return tw.Flush()
}

// tokenJSON is a token and its keys in key list.
type tokenJSON struct {
	Module string `json:"module"`
	kms.TokenInfo
	Keys  []tokenKeyJSON `json:"keys"`
	Error string         `json:"error,omitempty"` // why its keys are not listed
}

type tokenKeyJSON struct {
	kms.KeyInfo
	Authorities []string `json:"authorities,omitempty"`
}

// listTokens lists the tokens of the modules --module and the home name,
// and on each the keys, with the authorities that use them.
func listTokens(e *env, f *flags, u unlockFlags, asJSON bool) error {
	modules := map[string]bool{}
	if u.module != "" {
		modules[u.module] = true
	}
	users := map[string][]string{} // token and object -> authorities
	var keys *kms.Manager
	if dir := f.homeDir(); home.Exists(dir) {
		h, err := home.Open(e.ctx, dir, u.unlock())
		if err != nil {
			return err
		}
		defer h.Close()
		keys = h.Keys
		if h.Config.Keys.PKCS11Module != "" && u.module == "" {
			modules[h.Config.Keys.PKCS11Module] = true
		}
		for _, t := range h.Config.Tokens {
			if t.Module != "" {
				modules[t.Module] = true
			}
		}
		auths, err := h.Store.Authorities(e.ctx)
		if err != nil {
			return err
		}
		for _, a := range auths {
			uris := []string{a.KeyURI}
			sshKeys, err := h.Store.SSHKeys(e.ctx, a.Name)
			if err != nil {
				return err
			}
			for _, k := range sshKeys {
				uris = append(uris, k.KeyURI)
			}
			for _, ku := range uris {
				if p, err := kms.ParseURI(ku); err == nil && !slices.Contains(users[p.Token+"\x00"+p.Object], a.Name) {
					users[p.Token+"\x00"+p.Object] = append(users[p.Token+"\x00"+p.Object], a.Name)
				}
			}
		}
	} else {
		var err error
		if keys, _, err = home.KeyManager(u.unlock(), ""); err != nil {
			return err
		}
		defer keys.Close()
	}
	if len(modules) == 0 {
		return badUsage("no PKCS#11 module to list: give --module PATH (a home's modules are those of signet.toml)")
	}
	var out []tokenJSON
	for _, m := range slices.Sorted(maps.Keys(modules)) {
		tokens, err := kms.ListTokens(m)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			tj := tokenJSON{Module: m, TokenInfo: t, Keys: []tokenKeyJSON{}}
			list, err := keys.List(e.ctx, kms.MarshalURI(&kms.URI{Token: t.Label, Serial: t.Serial}))
			if err != nil {
				tj.Error = err.Error()
			}
			for _, k := range list {
				tj.Keys = append(tj.Keys, tokenKeyJSON{KeyInfo: k, Authorities: users[t.Label+"\x00"+k.Label]})
			}
			out = append(out, tj)
		}
	}
	if asJSON {
		if out == nil {
			out = []tokenJSON{}
		}
		return writeJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKEN\tSERIAL\tSLOT\tKEY\tTYPE\tAUTHORITY")
	for _, t := range out {
		row := fmt.Sprintf("%s\t%s\t%d\t", t.Label, t.Serial, t.Slot)
		if len(t.Keys) == 0 {
			what := "-"
			if t.Error != "" {
				what = "(keys not listed: " + t.Error + ")"
			}
			fmt.Fprintf(tw, "%s%s\t\t\n", row, what)
		}
		for _, k := range t.Keys {
			fmt.Fprintf(tw, "%s%s\t%s\t%s\n", row, k.URI, k.Type, cmp.Or(strings.Join(k.Authorities, ","), "-"))
		}
	}
	return tw.Flush()
}
func publicPEM(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", errs.Wrap(errs.Internal, err, "encoding the public key")
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
