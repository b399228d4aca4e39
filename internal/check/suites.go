package check

import (
	"fmt"
	"strings"
)

// suite is a TLS 1.0-1.2 cipher suite a probe offers, with what makes it
// weak. Names are the IANA registry's.
type suite struct {
	id   uint16
	name string
	kx   string // ECDHE, DHE, RSA, ECDH, DH_anon, ECDH_anon
	enc  string // AEAD, CBC, 3DES, RC4, NULL, EXPORT
}

// suites is every suite probed: the modern ones and the weak ones servers
// still turn out to accept. A server's choice outside this list ends the
// enumeration with an error.
var suites = []suite{
	{0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE", "AEAD"},
	{0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE", "AEAD"},
	{0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE", "AEAD"},
	{0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE", "AEAD"},
	{0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE", "AEAD"},
	{0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE", "AEAD"},
	{0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "DHE", "AEAD"},
	{0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE", "AEAD"},
	{0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE", "AEAD"},
	{0xc0ac, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", "ECDHE", "AEAD"},
	{0xc0ad, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", "ECDHE", "AEAD"},
	{0xc09e, "TLS_DHE_RSA_WITH_AES_128_CCM", "DHE", "AEAD"},
	{0xc09f, "TLS_DHE_RSA_WITH_AES_256_CCM", "DHE", "AEAD"},
	{0xc05c, "TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256", "ECDHE", "AEAD"},
	{0xc060, "TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256", "ECDHE", "AEAD"},
	{0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", "RSA", "AEAD"},
	{0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", "RSA", "AEAD"},
	{0xc09c, "TLS_RSA_WITH_AES_128_CCM", "RSA", "AEAD"},
	{0xc09d, "TLS_RSA_WITH_AES_256_CCM", "RSA", "AEAD"},
	{0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE", "CBC"},
	{0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE", "CBC"},
	{0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE", "CBC"},
	{0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE", "CBC"},
	{0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE", "CBC"},
	{0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE", "CBC"},
	{0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE", "CBC"},
	{0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE", "CBC"},
	{0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "DHE", "CBC"},
	{0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", "DHE", "CBC"},
	{0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", "DHE", "CBC"},
	{0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", "DHE", "CBC"},
	{0x0045, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA", "DHE", "CBC"},
	{0x0088, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA", "DHE", "CBC"},
	{0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", "CBC"},
	{0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", "RSA", "CBC"},
	{0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256", "RSA", "CBC"},
	{0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256", "RSA", "CBC"},
	{0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", "RSA", "CBC"},
	{0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA", "RSA", "CBC"},
	{0x0096, "TLS_RSA_WITH_SEED_CBC_SHA", "RSA", "CBC"},
	{0x0007, "TLS_RSA_WITH_IDEA_CBC_SHA", "RSA", "CBC"},
	{0xc004, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA", "ECDH", "CBC"},
	{0xc00e, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA", "ECDH", "CBC"},
	{0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA", "DH_anon", "CBC"},
	{0x003a, "TLS_DH_anon_WITH_AES_256_CBC_SHA", "DH_anon", "CBC"},
	{0xc018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA", "ECDH_anon", "CBC"},
	{0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE", "3DES"},
	{0xc008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", "ECDHE", "3DES"},
	{0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", "DHE", "3DES"},
	{0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "RSA", "3DES"},
	{0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", "ECDHE", "RC4"},
	{0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "ECDHE", "RC4"},
	{0x0005, "TLS_RSA_WITH_RC4_128_SHA", "RSA", "RC4"},
	{0x0004, "TLS_RSA_WITH_RC4_128_MD5", "RSA", "RC4"},
	{0x0018, "TLS_DH_anon_WITH_RC4_128_MD5", "DH_anon", "RC4"},
	{0x0009, "TLS_RSA_WITH_DES_CBC_SHA", "RSA", "EXPORT"}, // single DES: export strength
	{0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA", "DHE", "EXPORT"},
	{0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5", "RSA", "EXPORT"},
	{0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", "RSA", "EXPORT"},
	{0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", "RSA", "EXPORT"},
	{0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", "DHE", "EXPORT"},
	{0x0001, "TLS_RSA_WITH_NULL_MD5", "RSA", "NULL"},
	{0x0002, "TLS_RSA_WITH_NULL_SHA", "RSA", "NULL"},
	{0x003b, "TLS_RSA_WITH_NULL_SHA256", "RSA", "NULL"},
	{0xc010, "TLS_ECDHE_RSA_WITH_NULL_SHA", "ECDHE", "NULL"},
	{0xc006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA", "ECDHE", "NULL"},
}

func suiteByID(id uint16) (suite, bool) {
	for _, s := range suites {
		if s.id == id {
			return s, true
		}
	}
	return suite{}, false
}

// flaws says what is wrong with s and how bad it is: broken ciphers (RC4,
// 3DES, export, NULL) and anonymous key exchange fail; CBC (not AEAD) and
// key exchange without forward secrecy warn.
func (s suite) flaws() (Level, string) {
	var bad, weak []string
	switch s.enc {
	case "RC4", "3DES", "NULL":
		bad = append(bad, s.enc)
	case "EXPORT":
		bad = append(bad, "export-grade")
	case "CBC":
		weak = append(weak, "not AEAD")
	}
	switch s.kx {
	case "DH_anon", "ECDH_anon":
		bad = append(bad, "anonymous")
	case "RSA", "ECDH":
		weak = append(weak, "not forward secret")
	}
	all := strings.Join(append(bad, weak...), ", ")
	switch {
	case len(bad) > 0:
		return Fail, all
	case len(weak) > 0:
		return Warn, all
	}
	return OK, ""
}

func versionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSLv3"
	case versionTLS10:
		return "TLS 1.0"
	case versionTLS11:
		return "TLS 1.1"
	case versionTLS12:
		return "TLS 1.2"
	case versionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("version 0x%04x", v)
}
