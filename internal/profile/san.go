package profile

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signet/internal/errs"
)

// OIDSubjectAltName is id-ce-subjectAltName.
var OIDSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// otherName is one GeneralName otherName: a type-id and a string value of
// the given universal tag (IA5String for SRVName, UTF8String for XmppAddr).
type otherName struct {
	typeID asn1.ObjectIdentifier
	tag    int
	value  string
}

// marshalSAN encodes a subjectAltName extension (RFC 5280 4.2.1.6):
//
//	GeneralNames ::= SEQUENCE OF GeneralName
//	GeneralName ::= CHOICE {
//	    otherName  [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY },
//	    rfc822Name [1] IA5String, dNSName [2] IA5String, iPAddress [7] OCTET STRING, ... }
//
// The order is DNS names, IP addresses, emails, then otherNames.
func marshalSAN(dns []string, ips []net.IP, emails []string, others []otherName) (pkix.Extension, error) {
	for _, list := range [][]string{dns, emails} {
		for _, n := range list {
			if !isIA5(n) {
				return pkix.Extension{}, errs.New(errs.Malformed, "name %q is not ASCII (IA5String)", n)
			}
		}
	}
	for _, o := range others {
		if o.tag == asn1.TagIA5String && !isIA5(o.value) {
			return pkix.Extension{}, errs.New(errs.Malformed, "name %q is not ASCII (IA5String)", o.value)
		}
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, n := range dns {
			b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(n)) })
		}
		for _, ip := range ips {
			raw := ip.To4()
			if raw == nil {
				raw = ip.To16()
			}
			b.AddASN1(cbasn1.Tag(7).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(raw) })
		}
		for _, n := range emails {
			b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(n)) })
		}
		for _, o := range others {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(o.typeID)
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.Tag(o.tag), func(b *cryptobyte.Builder) { b.AddBytes([]byte(o.value)) })
				})
			})
		}
	})
	der, err := b.Bytes()
	if err != nil {
		return pkix.Extension{}, errs.Wrap(errs.Internal, err, "cannot encode subjectAltName")
	}
	return pkix.Extension{Id: OIDSubjectAltName, Value: der}, nil
}

func isIA5(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
