package profile

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signet/internal/errs"
)

var (
	keyOnce sync.Once
	ecKey   *ecdsa.PrivateKey
	rsaKey  *rsa.PrivateKey
	edPub   ed25519.PublicKey
)

func keys(t *testing.T) {
	t.Helper()
	keyOnce.Do(func() {
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048)
		edPub, _, _ = ed25519.GenerateKey(rand.Reader)
	})
}

var (
	t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 = t0.Add(30 * 24 * time.Hour)
)

func leaf(pub crypto.PublicKey) Leaf {
	return Leaf{PublicKey: pub, NotBefore: t0, NotAfter: t1, SerialNumber: big.NewInt(4711)}
}

// sign makes a real certificate from tmpl with a throwaway self-signed test
// CA; production code in this package never signs.
func sign(t *testing.T, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl, err := RootTemplate(CA{CommonName: "Test Root", PublicKey: caKey.Public(), NotBefore: t0.Add(-time.Hour), NotAfter: t1.Add(time.Hour), SerialNumber: big.NewInt(1), MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, tmpl.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParsePurpose(t *testing.T) {
	for _, p := range Purposes {
		got, err := ParsePurpose(string(p))
		if err != nil || got != p {
			t.Errorf("ParsePurpose(%q) = %q, %v", p, got, err)
		}
	}
	_, err := ParsePurpose("smime")
	if errs.KindOf(err) != errs.Malformed || !strings.Contains(err.Error(), "tls-server") || !strings.Contains(err.Error(), "ssh-user") {
		t.Errorf("ParsePurpose(smime) = %v, want malformed error listing the purposes", err)
	}
	if !SSHHost.IsSSH() || !SSHUser.IsSSH() || XMPP.IsSSH() {
		t.Error("IsSSH wrong")
	}
}

func TestLeafProfiles(t *testing.T) {
	keys(t)
	const (
		ds = x509.KeyUsageDigitalSignature
		ke = x509.KeyUsageKeyEncipherment
	)
	srv := x509.ExtKeyUsageServerAuth
	cli := x509.ExtKeyUsageClientAuth
	tests := []struct {
		name    string
		p       Purpose
		l       func(Leaf) Leaf
		ku      x509.KeyUsage
		eku     []x509.ExtKeyUsage
		cn      string
		dns     []string
		ips     []string
		emails  []string
		errKind errs.Kind // 0 with errText "" means success
		errText string
	}{
		{name: "tls-server ecdsa", p: TLSServer, l: func(l Leaf) Leaf { l.DNSNames = []string{"www.example.org", "example.org"}; return l },
			ku: ds, eku: []x509.ExtKeyUsage{srv}, cn: "www.example.org", dns: []string{"www.example.org", "example.org"}},
		{name: "tls-server rsa", p: TLSServer, l: func(l Leaf) Leaf {
			l.PublicKey = rsaKey.Public()
			l.IPAddresses = []net.IP{net.ParseIP("192.0.2.7")}
			return l
		}, ku: ds | ke, eku: []x509.ExtKeyUsage{srv}, cn: "192.0.2.7", ips: []string{"192.0.2.7"}},
		{name: "tls-server ed25519", p: TLSServer, l: func(l Leaf) Leaf { l.PublicKey = edPub; l.DNSNames = []string{"a.corp"}; return l },
			ku: ds, eku: []x509.ExtKeyUsage{srv}, cn: "a.corp", dns: []string{"a.corp"}},
		{name: "tls-server no names", p: TLSServer, l: func(l Leaf) Leaf { l.CommonName = "x"; return l },
			errKind: errs.Rejected, errText: "at least one DNS name or IP"},
		{name: "tls-server email", p: TLSServer, l: func(l Leaf) Leaf {
			l.DNSNames = []string{"a.corp"}
			l.EmailAddresses = []string{"a@corp"}
			return l
		}, errKind: errs.Rejected, errText: "cannot carry email"},
		{name: "tls-server cn outside san", p: TLSServer, l: func(l Leaf) Leaf {
			l.DNSNames = []string{"a.corp"}
			l.CommonName = "b.corp"
			return l
		}, errKind: errs.Rejected, errText: `common name "b.corp"`},
		{name: "tls-server client usage", p: TLSServer, l: func(l Leaf) Leaf { l.Usage = Client; l.DNSNames = []string{"a.corp"}; return l },
			errKind: errs.Rejected, errText: `does not issue "client"`},
		{name: "tls-server long first name", p: TLSServer, l: func(l Leaf) Leaf {
			l.DNSNames = []string{strings.Repeat("a", 60) + ".example.org", "short.example.org"}
			return l
		}, ku: ds, eku: []x509.ExtKeyUsage{srv}, cn: "short.example.org", dns: []string{strings.Repeat("a", 60) + ".example.org", "short.example.org"}},
		{name: "tls-client email", p: TLSClient, l: func(l Leaf) Leaf { l.EmailAddresses = []string{"alice@example.org"}; return l },
			ku: ds, eku: []x509.ExtKeyUsage{cli}, cn: "alice@example.org", emails: []string{"alice@example.org"}},
		{name: "tls-client rsa cn only", p: TLSClient, l: func(l Leaf) Leaf { l.PublicKey = rsaKey.Public(); l.CommonName = "alice"; return l },
			ku: ds, eku: []x509.ExtKeyUsage{cli}, cn: "alice"},
		{name: "tls-client nobody", p: TLSClient, l: func(l Leaf) Leaf { return l }, errKind: errs.Malformed, errText: "name nobody"},
		{name: "xmpp", p: XMPP, l: func(l Leaf) Leaf { l.DNSNames = []string{"example.org", "xmpp1.example.org"}; return l },
			ku: ds, eku: []x509.ExtKeyUsage{srv, cli}, cn: "example.org", dns: []string{"example.org", "xmpp1.example.org"}},
		{name: "xmpp domain not a dns name", p: XMPP, l: func(l Leaf) Leaf {
			l.DNSNames = []string{"xmpp1.example.org"}
			l.XMPPDomains = []string{"example.org"}
			return l
		}, errKind: errs.Rejected, errText: `xmpp domain "example.org"`},
		{name: "xmpp no dns", p: XMPP, l: func(l Leaf) Leaf { l.IPAddresses = []net.IP{net.ParseIP("10.0.0.1")}; return l },
			errKind: errs.Rejected, errText: "at least one DNS name"},
		{name: "vpn server rsa", p: VPN, l: func(l Leaf) Leaf { l.PublicKey = rsaKey.Public(); l.DNSNames = []string{"vpn.corp"}; return l },
			ku: ds | ke, eku: []x509.ExtKeyUsage{srv}, cn: "vpn.corp", dns: []string{"vpn.corp"}},
		{name: "vpn server cn only", p: VPN, l: func(l Leaf) Leaf { l.CommonName = "vpn-server"; return l },
			errKind: errs.Rejected, errText: "at least one DNS name or IP"},
		{name: "vpn client", p: VPN, l: func(l Leaf) Leaf { l.Usage = Client; l.CommonName = "john.doe"; return l },
			ku: ds, eku: []x509.ExtKeyUsage{cli}, cn: "john.doe"},
		{name: "vpn client rsa", p: VPN, l: func(l Leaf) Leaf { l.PublicKey = rsaKey.Public(); l.Usage = Client; l.CommonName = "bob"; return l },
			ku: ds, eku: []x509.ExtKeyUsage{cli}, cn: "bob"},
		{name: "vpn no cn", p: VPN, l: func(l Leaf) Leaf { l.Usage = Client; return l }, errKind: errs.Rejected, errText: "needs a common name"},
		{name: "libvirt server", p: Libvirt, l: func(l Leaf) Leaf {
			l.PublicKey = rsaKey.Public()
			l.DNSNames = []string{"kvm1.corp"}
			l.IPAddresses = []net.IP{net.ParseIP("2001:db8::1")}
			return l
		},
			ku: ds | ke, eku: []x509.ExtKeyUsage{srv, cli}, cn: "kvm1.corp", dns: []string{"kvm1.corp"}, ips: []string{"2001:db8::1"}},
		{name: "libvirt server without host names", p: Libvirt, l: func(l Leaf) Leaf { l.PublicKey = rsaKey.Public(); l.CommonName = "kvm1"; return l },
			errKind: errs.Rejected, errText: "at least one DNS name or IP"},
		{name: "libvirt client", p: Libvirt, l: func(l Leaf) Leaf { l.PublicKey = rsaKey.Public(); l.Usage = Client; l.CommonName = "admin"; return l },
			ku: ds | ke, eku: []x509.ExtKeyUsage{cli}, cn: "admin"},
		{name: "libvirt server ecdsa", p: Libvirt, l: func(l Leaf) Leaf { l.DNSNames = []string{"kvm1.corp"}; return l },
			errKind: errs.Rejected, errText: "libvirt requires keyEncipherment"},
		{name: "libvirt client ed25519", p: Libvirt, l: func(l Leaf) Leaf { l.PublicKey = edPub; l.Usage = Client; l.CommonName = "admin"; return l },
			errKind: errs.Rejected, errText: "needs an RSA key"},
		{name: "ssh-host", p: SSHHost, l: func(l Leaf) Leaf { l.DNSNames = []string{"h.corp"}; return l }, errKind: errs.Rejected, errText: "SSH certificates"},
		{name: "ssh-user", p: SSHUser, l: func(l Leaf) Leaf { l.CommonName = "u"; return l }, errKind: errs.Rejected, errText: "SSH certificates"},
		{name: "zero serial", p: TLSClient, l: func(l Leaf) Leaf { l.CommonName = "u"; l.SerialNumber = big.NewInt(0); return l }, errKind: errs.Malformed, errText: "serial"},
		{name: "validity backwards", p: TLSClient, l: func(l Leaf) Leaf { l.CommonName = "u"; l.NotAfter = t0.Add(-time.Second); return l }, errKind: errs.Malformed, errText: "before it starts"},
		{name: "no key", p: TLSClient, l: func(l Leaf) Leaf { l.CommonName = "u"; l.PublicKey = nil; return l }, errKind: errs.Malformed, errText: "no public key"},
		{name: "p521", p: TLSClient, l: func(l Leaf) Leaf {
			k, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
			l.CommonName = "u"
			l.PublicKey = k.Public()
			return l
		}, errKind: errs.Rejected, errText: "P-521"},
		{name: "rsa over 8192 bits", p: TLSClient, l: func(l Leaf) Leaf {
			l.CommonName = "u"
			l.PublicKey = &rsa.PublicKey{N: new(big.Int).SetBit(big.NewInt(1), 8199, 1), E: 65537}
			return l
		}, errKind: errs.Rejected, errText: "at most 8192"},
		{name: "rsa exponent 3", p: TLSClient, l: func(l Leaf) Leaf {
			l.CommonName = "u"
			l.PublicKey = &rsa.PublicKey{N: new(big.Int).SetBit(big.NewInt(1), 2047, 1), E: 3}
			return l
		}, errKind: errs.Rejected, errText: "exponent 65537"},
		{name: "unknown purpose", p: Purpose("smime"), l: func(l Leaf) Leaf { return l }, errKind: errs.Malformed, errText: "unknown purpose"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := LeafTemplate(tc.p, tc.l(leaf(ecKey.Public())))
			if tc.errText != "" {
				if err == nil || errs.KindOf(err) != tc.errKind || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.errKind, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := sign(t, tmpl)
			if c.KeyUsage != tc.ku {
				t.Errorf("KeyUsage = %b, want %b", c.KeyUsage, tc.ku)
			}
			for _, e := range c.Extensions {
				if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 15}) && !e.Critical {
					t.Error("keyUsage is not critical (libvirt and RFC 5280 4.2.1.3 want it critical)")
				}
			}
			if !slices.Equal(c.ExtKeyUsage, tc.eku) {
				t.Errorf("ExtKeyUsage = %v, want %v", c.ExtKeyUsage, tc.eku)
			}
			if c.Subject.CommonName != tc.cn {
				t.Errorf("CN = %q, want %q", c.Subject.CommonName, tc.cn)
			}
			if !slices.Equal(c.DNSNames, tc.dns) {
				t.Errorf("DNSNames = %q, want %q", c.DNSNames, tc.dns)
			}
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tc.ips) {
				t.Errorf("IPs = %q, want %q", ips, tc.ips)
			}
			if !slices.Equal(c.EmailAddresses, tc.emails) {
				t.Errorf("emails = %q, want %q", c.EmailAddresses, tc.emails)
			}
			if !c.BasicConstraintsValid || c.IsCA || c.MaxPathLen > 0 || c.MaxPathLenZero {
				t.Errorf("basic constraints: valid=%v ca=%v pathlen=%d zero=%v", c.BasicConstraintsValid, c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
			}
			if len(c.SubjectKeyId) != 20 || len(c.AuthorityKeyId) != 20 {
				t.Errorf("SKI %x AKI %x, want 20 bytes each", c.SubjectKeyId, c.AuthorityKeyId)
			}
			if n := countExt(c, OIDSubjectAltName); len(tc.dns)+len(tc.ips)+len(tc.emails) > 0 && n != 1 {
				t.Errorf("%d SAN extensions, want 1", n)
			}
		})
	}
}

func countExt(c *x509.Certificate, oid asn1.ObjectIdentifier) int {
	n := 0
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			n++
		}
	}
	return n
}

type generalName struct {
	tag   cbasn1.Tag
	oid   string // otherName only
	vtag  cbasn1.Tag
	value string
}

// parseSAN decodes a SAN independently of crypto/x509, with cryptobyte.
func parseSAN(t *testing.T, der []byte) []generalName {
	t.Helper()
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		t.Fatal("SAN is not one SEQUENCE")
	}
	var out []generalName
	for !seq.Empty() {
		var gn cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1(&gn, &tag) {
			t.Fatal("bad GeneralName")
		}
		if tag != cbasn1.Tag(0).ContextSpecific().Constructed() {
			out = append(out, generalName{tag: tag, value: string(gn)})
			continue
		}
		var oid asn1.ObjectIdentifier
		var explicit, value cryptobyte.String
		var vtag cbasn1.Tag
		if !gn.ReadASN1ObjectIdentifier(&oid) || !gn.ReadASN1(&explicit, cbasn1.Tag(0).ContextSpecific().Constructed()) || !gn.Empty() ||
			!explicit.ReadAnyASN1(&value, &vtag) || !explicit.Empty() {
			t.Fatal("bad otherName")
		}
		out = append(out, generalName{tag: tag, oid: oid.String(), vtag: vtag, value: string(value)})
	}
	return out
}

func xmppCert(t *testing.T) *x509.Certificate {
	keys(t)
	l := leaf(ecKey.Public())
	l.DNSNames = []string{"example.org", "xmpp1.example.org"}
	tmpl, err := LeafTemplate(XMPP, l)
	if err != nil {
		t.Fatal(err)
	}
	return sign(t, tmpl)
}

func TestXMPPSubjectAltName(t *testing.T) {
	c := xmppCert(t)
	if n := countExt(c, OIDSubjectAltName); n != 1 {
		t.Fatalf("%d SAN extensions, want 1", n)
	}
	var san []byte
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDSubjectAltName) {
			if e.Critical {
				t.Error("SAN is critical although the subject is not empty")
			}
			san = e.Value
		}
	}
	dns := cbasn1.Tag(2).ContextSpecific()
	other := cbasn1.Tag(0).ContextSpecific().Constructed()
	want := []generalName{
		{tag: dns, value: "example.org"},
		{tag: dns, value: "xmpp1.example.org"},
		{tag: other, oid: "1.3.6.1.5.5.7.8.7", vtag: cbasn1.IA5String, value: "_xmpp-client.example.org"},
		{tag: other, oid: "1.3.6.1.5.5.7.8.7", vtag: cbasn1.IA5String, value: "_xmpp-server.example.org"},
		{tag: other, oid: "1.3.6.1.5.5.7.8.5", vtag: cbasn1.UTF8String, value: "example.org"},
	}
	if got := parseSAN(t, san); !slices.Equal(got, want) {
		t.Errorf("SAN =\n%+v\nwant\n%+v", got, want)
	}
}

func TestXMPPEmptySubjectMakesSANCritical(t *testing.T) {
	keys(t)
	l := leaf(ecKey.Public())
	l.DNSNames = []string{strings.Repeat("x", 60) + ".example.org"} // too long for a CN
	tmpl, err := LeafTemplate(XMPP, l)
	if err != nil {
		t.Fatal(err)
	}
	c := sign(t, tmpl)
	if c.Subject.CommonName != "" {
		t.Fatalf("CN = %q, want empty", c.Subject.CommonName)
	}
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDSubjectAltName) && !e.Critical {
			t.Error("SAN not critical with an empty subject")
		}
	}
}

// requireTool finds an external program or skips, unless CI demands it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SIGNET_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is required (SIGNET_REQUIRE_TOOLS=1): %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return path
}

// TestXMPPOpenSSL checks the certificate with a real, independent parser.
// OpenSSL 3.0 (this machine's) prints "othername: SRVName::_xmpp-client.example.org"
// and "othername: XmppAddr::example.org"; releases that do not know the OID
// print it numerically ("othername: 1.3.6.1.5.5.7.8.7::..."), which is accepted
// too so the test does not pin one OpenSSL release.
func TestXMPPOpenSSL(t *testing.T) {
	openssl := requireTool(t, "openssl")
	c := xmppCert(t)
	cmd := exec.Command(openssl, "x509", "-text", "-noout")
	cmd.Stdin = bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"DNS:example.org", "DNS:xmpp1.example.org", "TLS Web Server Authentication", "TLS Web Client Authentication"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl output lacks %q:\n%s", want, text)
		}
	}
	for _, d := range []string{"_xmpp-client.example.org", "_xmpp-server.example.org"} {
		if !strings.Contains(text, "othername: SRVName::"+d) && !strings.Contains(text, "othername: 1.3.6.1.5.5.7.8.7::"+d) {
			t.Errorf("openssl output lacks the SRV-ID %s:\n%s", d, text)
		}
	}
	if !strings.Contains(text, "othername: XmppAddr::example.org") && !strings.Contains(text, "othername: 1.3.6.1.5.5.7.8.5::example.org") {
		t.Errorf("openssl output lacks the XmppAddr:\n%s", text)
	}
}

func TestCATemplates(t *testing.T) {
	keys(t)
	ca := CA{CommonName: "Example XMPP CA", Organization: "Example", PublicKey: ecKey.Public(), NotBefore: t0, NotAfter: t1, SerialNumber: big.NewInt(9), MaxPathLen: -1}
	const want = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature

	root, err := RootTemplate(ca)
	if err != nil {
		t.Fatal(err)
	}
	rc := sign(t, root)
	if !rc.IsCA || rc.KeyUsage != want || rc.MaxPathLen != -1 || len(rc.ExtKeyUsage) != 0 || len(rc.SubjectKeyId) != 20 {
		t.Errorf("root: ca=%v ku=%b pathlen=%d eku=%v ski=%x", rc.IsCA, rc.KeyUsage, rc.MaxPathLen, rc.ExtKeyUsage, rc.SubjectKeyId)
	}
	if rc.Subject.Organization[0] != "Example" {
		t.Errorf("root O = %v", rc.Subject.Organization)
	}
	ca1 := ca
	ca1.MaxPathLen = 1
	if r1, err := RootTemplate(ca1); err != nil || r1.MaxPathLen != 1 {
		t.Errorf("root pathlen 1: %v %v", r1, err)
	}

	ekus := map[Purpose][]x509.ExtKeyUsage{
		TLSServer: {x509.ExtKeyUsageServerAuth},
		TLSClient: {x509.ExtKeyUsageClientAuth},
		XMPP:      {x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		VPN:       {x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		Libvirt:   {x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for p, eku := range ekus {
		tmpl, err := AuthorityTemplate(p, ca)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		c := sign(t, tmpl)
		if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero || c.KeyUsage != want || !slices.Equal(c.ExtKeyUsage, eku) {
			t.Errorf("%s: ca=%v pathlen=%d/%v ku=%b eku=%v", p, c.IsCA, c.MaxPathLen, c.MaxPathLenZero, c.KeyUsage, c.ExtKeyUsage)
		}
	}
	if _, err := AuthorityTemplate(SSHHost, ca); errs.KindOf(err) != errs.Rejected {
		t.Errorf("ssh authority: %v", err)
	}
	if _, err := AuthorityTemplate(VPN, ca1); errs.KindOf(err) != errs.Malformed {
		t.Errorf("authority with pathlen 1: %v", err)
	}
	noName := ca
	noName.CommonName = ""
	if _, err := RootTemplate(noName); !errors.Is(err, &errs.Error{Kind: errs.Malformed}) {
		t.Errorf("root without CN: %v", err)
	}
}

// TestXMPPCerttool checks the SAN with GnuTLS, a second independent parser.
func TestXMPPCerttool(t *testing.T) {
	certtool := requireTool(t, "certtool")
	c := xmppCert(t)
	cmd := exec.Command(certtool, "-i")
	cmd.Stdin = bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("certtool: %v\n%s", err, out)
	}
	for _, want := range []string{"DNSname: example.org", "DNSname: xmpp1.example.org", "SRVName: _xmpp-client.example.org", "SRVName: _xmpp-server.example.org", "XMPP Address: example.org"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("certtool output lacks %q:\n%s", want, out)
		}
	}
}
