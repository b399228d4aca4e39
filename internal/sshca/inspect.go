package sshca

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"signet/internal/errs"
)

// ParseCertificate reads a certificate in -cert.pub form ("TYPE BASE64
// [comment]"), as ssh-keygen writes and signet ssh sign does.
func ParseCertificate(data []byte) (*ssh.Certificate, error) {
	if len(data) > MaxPublicKeySize {
		return nil, errs.New(errs.Malformed, "certificate is larger than %d bytes", MaxPublicKeySize)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "cannot parse the SSH certificate")
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, errs.New(errs.Malformed, "that is a plain %s public key, not a certificate", pub.Type())
	}
	return cert, nil
}

// Inspect describes a certificate the way ssh-keygen -L does, line for
// line, so the two can be compared; times are in the local zone as there.
// name is the first line's file name.
func Inspect(name string, cert *ssh.Certificate) string {
	var b strings.Builder
	certType := "user"
	if cert.CertType == ssh.HostCert {
		certType = "host"
	}
	fmt.Fprintf(&b, "%s:\n", name)
	fmt.Fprintf(&b, "        Type: %s %s certificate\n", cert.Type(), certType)
	fmt.Fprintf(&b, "        Public key: %s-CERT %s\n", keyTypeName(cert.Key), ssh.FingerprintSHA256(cert.Key))
	sigFormat := ""
	if cert.Signature != nil {
		sigFormat = cert.Signature.Format
	}
	fmt.Fprintf(&b, "        Signing CA: %s %s (using %s)\n", keyTypeName(cert.SignatureKey), ssh.FingerprintSHA256(cert.SignatureKey), sigFormat)
	fmt.Fprintf(&b, "        Key ID: \"%s\"\n", cert.KeyId)
	fmt.Fprintf(&b, "        Serial: %d\n", cert.Serial)
	fmt.Fprintf(&b, "        Valid: %s\n", validity(cert.ValidAfter, cert.ValidBefore))
	b.WriteString("        Principals: ")
	if len(cert.ValidPrincipals) == 0 {
		b.WriteString("(none)\n")
	} else {
		for _, p := range cert.ValidPrincipals {
			b.WriteString("\n                " + p)
		}
		b.WriteString("\n")
	}
	b.WriteString("        Critical Options: ")
	writeOptions(&b, cert.CriticalOptions, true)
	b.WriteString("        Extensions: ")
	writeOptions(&b, cert.Extensions, false)
	return b.String()
}

// keyTypeName is OpenSSH's short name of a key type (sshkey_type).
func keyTypeName(k ssh.PublicKey) string {
	if k == nil {
		return "unknown"
	}
	switch t := k.Type(); {
	case t == ssh.KeyAlgoED25519:
		return "ED25519"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ECDSA"
	case t == ssh.KeyAlgoRSA:
		return "RSA"
	case strings.HasPrefix(t, "sk-ssh-ed25519"):
		return "ED25519-SK"
	case strings.HasPrefix(t, "sk-ecdsa"):
		return "ECDSA-SK"
	default:
		return strings.ToUpper(t)
	}
}

func validity(after, before uint64) string {
	const forever = math.MaxUint64
	format := func(t uint64) string {
		if t > math.MaxInt64 {
			return "forever"
		}
		return time.Unix(int64(t), 0).Local().Format("2006-01-02T15:04:05")
	}
	switch {
	case after == 0 && before == forever:
		return "forever"
	case after == 0:
		return "before " + format(before)
	case before == forever:
		return "after " + format(after)
	}
	return "from " + format(after) + " to " + format(before)
}

// writeOptions lists options in the certificate's (sorted) order, with the
// values ssh-keygen shows: those of force-command and source-address.
func writeOptions(b *strings.Builder, opts map[string]string, critical bool) {
	if len(opts) == 0 {
		b.WriteString("(none)\n")
		return
	}
	b.WriteString("\n")
	names := make([]string, 0, len(opts))
	for n := range opts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := opts[n]
		b.WriteString("                " + n)
		switch {
		case critical && (n == "force-command" || n == "source-address"):
			b.WriteString(" " + v)
		case v != "":
			fmt.Fprintf(b, " UNKNOWN OPTION (len %d)", len(v)+4)
		}
		b.WriteString("\n")
	}
}
