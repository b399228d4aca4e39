package lint

import zx509 "github.com/zmap/zcrypto/x509"

// Exclusion is a lint the gate does not run, and why.
type Exclusion struct {
	Name   string
	Reason string
}

// Excluded lists every lint of the Sources that the gate skips, for
// certificates or CRLs, each for a
// reason that holds for a private CA: its roots are installed by the
// organisation, not by a browser root program, so the Baseline Requirements
// rules that exist for the public WebPKI's shared namespace, its registries
// and its audits do not apply. Every other RFC 5280 and BR lint runs.
// New refuses to start if a name here is not a zlint lint, so a rename in
// zlint cannot silently re-enable or hide anything.
var Excluded = []Exclusion{
	// Internal names and addresses are the point of a private PKI.
	{"e_dnsname_not_valid_tld", "internal names such as kvm1.corp or api.internal have no public TLD; the authority's name policy decides which names are legitimate"},
	{"e_ext_san_contains_reserved_ip", "private addresses (10/8, 192.168/16, fd00::/8, ...) are what internal servers use; the name policy limits them"},
	{"e_subject_contains_reserved_ip", "same as e_ext_san_contains_reserved_ip, for the CN that repeats a SAN IP address"},

	// XMPP needs otherName SRV-IDs (RFC 6120 13.7.1.2, RFC 4985).
	{"e_ext_san_other_name_present", "XMPP server certificates carry otherName SRV-IDs and XmppAddr as RFC 6120 asks; the BRs allow only dNSName/iPAddress for the public WebPKI"},

	// Key and signature algorithms: the BRs list only RSA and ECDSA.
	{"e_algorithm_identifier_improper_encoding", "BR 7.1.3.1 lists only RSA and ECDSA keys, so it flags Ed25519 (RFC 8410); a private CA may use Ed25519, and RFC 8410 encoding is checked by Go when the certificate is made"},
	{"e_signature_algorithm_not_supported", "BR 7.1.3.2 lists only RSA and ECDSA signatures, so it flags Ed25519 signatures; accepted in a private PKI"},

	// Certificate policies: the CA/B Forum policy OIDs (2.23.140.1.2.x)
	// assert BR compliance audited for the public WebPKI; a private CA must
	// not claim them, and has no policy of its own to assert yet.
	{"e_sub_cert_certificate_policies_missing", "would require a CA/B Forum policy OID (2.23.140.1.2.x) that a private CA must not assert"},
	{"e_sub_cert_cert_policy_empty", "same as e_sub_cert_certificate_policies_missing"},
	{"e_sub_ca_certificate_policies_missing", "same as e_sub_cert_certificate_policies_missing, for issuing authorities"},
	{"e_invalid_ca_certificate_policies", "same as e_sub_cert_certificate_policies_missing, for issuing authorities"},

	// Subject fields of CA certificates that only the public WebPKI requires.
	{"e_ca_country_name_missing", "BR 7.1.2.10.2 wants countryName in CA subjects for the public WebPKI; signet's CA subject is the CN and an optional organisation"},
	{"e_ca_organization_name_missing", "BR 7.1.2.10.2 wants organizationName in CA subjects; it is optional for a signet authority"},

	// Cost without benefit.
	{"e_cert_issued_by_compromised_emudhra_ca", "tries eight P-384 signature verifications per certificate (about 10 ms, 95% of the gate's time) to spot one public CA's compromised keys; a signet certificate is signed by signet's own key (and at lint time carries a placeholder signature), so it can never fire"},

	// CRLs: the Baseline Requirements' limits for the public WebPKI's CRLs.
	{"e_cab_crl_has_valid_reason_code", "BR 7.2.2 allows subscriber CRLs only keyCompromise, affiliationChanged, superseded, cessationOfOperation and privilegeWithdrawn; signet also accepts RFC 5280's cACompromise and aACompromise (a root revoking an authority needs cACompromise). e_crl_has_valid_reason_code still refuses any code outside RFC 5280 5.3.1"},
	{"e_crl_next_update_invalid", "BR 4.9.7 caps the public WebPKI's nextUpdate at 10 days (12 months for CA CRLs); `signet crl --validity` is the operator's to choose, and an offline root's CRL is signed for months. e_crl_has_next_update still requires a nextUpdate"},

	{"e_ecdsa_small_private_key", "searches for a subscriber ECDSA private key small enough to brute-force: about 200 µs per certificate, two thirds of the gate's time and the largest single cost of issuance. It guards subscribers against their own broken key generator, which in a private PKI only harms that subscriber; signet still refuses weak key sizes and curves (ca.checkSubjectKey) and the authority's own key as a subject key"},
}

// Waiver is a lint the gate runs on every certificate but whose failure it
// accepts on the certificates Applies picks, and why.
type Waiver struct {
	Name    string
	Reason  string
	Applies func(*zx509.Certificate) bool
}

// Waived lists the gate's waivers. Each is as narrow as the software that
// needs it; New refuses a name that is not a lint the gate runs.
var Waived = []Waiver{
	{"e_key_usage_and_extended_key_usage_inconsistent",
		"libvirt refuses a client certificate whose critical keyUsage lacks keyEncipherment (\"usage does not permit key encipherment\"), " +
			"while zlint reads RFC 5280 4.2.1.12 as allowing it with serverAuth only; waived for RSA leaves for clientAuth alone " +
			"whose keyUsage is exactly digitalSignature and keyEncipherment, which only the libvirt profile makes",
		libvirtClient},
}

// libvirtClient picks the certificates the libvirt profile makes for clients.
func libvirtClient(c *zx509.Certificate) bool {
	return c.PublicKeyAlgorithm == zx509.RSA && !c.IsCA && len(c.ExtKeyUsage) == 1 && c.ExtKeyUsage[0] == zx509.ExtKeyUsageClientAuth &&
		c.KeyUsage == zx509.KeyUsageDigitalSignature|zx509.KeyUsageKeyEncipherment
}
