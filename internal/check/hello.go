package check

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
)

// Go's crypto/tls offers only the suites it implements, so the legacy
// protocol versions and the TLS 1.2 suites a server accepts are probed with
// ClientHellos built here: one record, the versions and suites chosen by the
// caller, and the extensions a modern server wants before it answers.

// TLS protocol versions as they appear on the wire.
const (
	versionTLS10 uint16 = 0x0301
	versionTLS11 uint16 = 0x0302
	versionTLS12 uint16 = 0x0303
	versionTLS13 uint16 = 0x0304
)

const (
	recordHandshake      = 22
	recordAlert          = 21
	handshakeServerHello = 2
	handshakeCertificate = 11
	scsvRenegotiation    = 0x00ff // TLS_EMPTY_RENEGOTIATION_INFO_SCSV, RFC 5746
	extServerName        = 0
	extSupportedGroups   = 10
	extPointFormats      = 11
	extSignatureAlgs     = 13
	extExtendedMaster    = 23
	extSupportedVersion  = 43

	// maxRecord bounds one TLS record's body (2^14 plus the expansion
	// RFC 5246 allows); maxHello bounds the bytes read before a ServerHello
	// is complete, maxFlight those before the certificates are.
	maxRecord = 1<<14 + 2048
	maxHello  = 1 << 16
	maxFlight = 1 << 18 // a ServerHello and a certificate chain
)

// clientHello is a TLS record holding a ClientHello for version offering
// suites, with SNI for serverName when it is a DNS name ("" leaves it out).
func clientHello(version uint16, suites []uint16, serverName string, random [32]byte) []byte {
	var hs cryptobyte.Builder
	hs.AddUint8(1) // client_hello
	hs.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(version)
		b.AddBytes(random[:])
		b.AddUint8(0) // no session ID
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, s := range suites {
				b.AddUint16(s)
			}
			b.AddUint16(scsvRenegotiation)
		})
		b.AddUint8(1) // compression methods: null only
		b.AddUint8(0)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			if serverName != "" {
				b.AddUint16(extServerName)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
						b.AddUint8(0) // host_name
						b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(serverName)) })
					})
				})
			}
			b.AddUint16(extSupportedGroups)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					for _, g := range []uint16{29, 23, 24, 25, 30, 256, 257} { // x25519, P-256/384/521, x448, ffdhe2048/3072
						b.AddUint16(g)
					}
				})
			})
			b.AddUint16(extPointFormats)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) }) // uncompressed
			})
			b.AddUint16(extSignatureAlgs)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					for _, s := range []uint16{
						0x0403, 0x0503, 0x0603, 0x0807, 0x0808, // ECDSA SHA-2, Ed25519, Ed448
						0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b, // RSA-PSS
						0x0401, 0x0501, 0x0601, // RSA PKCS#1 SHA-2
						0x0303, 0x0301, 0x0203, 0x0201, 0x0202, // SHA-224, SHA-1, DSA
					} {
						b.AddUint16(s)
					}
				})
			})
			b.AddUint16(extExtendedMaster)
			b.AddUint16(0)
		})
	})
	body := hs.BytesOrPanic()
	var rec cryptobyte.Builder
	rec.AddUint8(recordHandshake)
	rec.AddUint16(versionTLS10) // the record version most servers expect in a first flight
	rec.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(body) })
	return rec.BytesOrPanic()
}

// serverHello is what a probe learns from a ServerHello.
type serverHello struct {
	version uint16 // the negotiated version (supported_versions when present)
	suite   uint16
}

// errRefused is a handshake the server ended with an alert or by closing
// the connection before its ServerHello: it does not accept what was offered.
var errRefused = errors.New("refused")

// readServerHello reads records from r until the first handshake message is
// complete and parses it as a ServerHello. An alert, or the connection
// closing first, is errRefused; anything else malformed is an error. It
// reads at most maxHello bytes of records.
func readServerHello(r io.Reader) (serverHello, error) {
	h := handshakeReader{r: r, limit: maxHello}
	typ, body, err := h.next()
	if err != nil {
		return serverHello{}, err
	}
	if typ != handshakeServerHello {
		return serverHello{}, fmt.Errorf("first handshake message is type %d, not a ServerHello", typ)
	}
	return parseServerHello(body)
}

// readCertificates reads a TLS 1.0-1.2 server's first flight from r, where
// the Certificate message follows the ServerHello in the clear, and
// returns the certificates it holds (DER, leaf first). It reads at most
// maxFlight bytes.
func readCertificates(r io.Reader) ([][]byte, error) {
	h := handshakeReader{r: r, limit: maxFlight}
	for range 2 {
		typ, body, err := h.next()
		if err != nil {
			return nil, err
		}
		if typ != handshakeCertificate {
			continue
		}
		s := cryptobyte.String(body)
		var list cryptobyte.String
		if !s.ReadUint24LengthPrefixed(&list) || !s.Empty() {
			return nil, errors.New("malformed Certificate message")
		}
		var certs [][]byte
		for !list.Empty() {
			var der cryptobyte.String
			if !list.ReadUint24LengthPrefixed(&der) || len(der) == 0 {
				return nil, errors.New("malformed Certificate message")
			}
			certs = append(certs, der)
		}
		if len(certs) == 0 {
			return nil, errors.New("the server sent no certificate")
		}
		return certs, nil
	}
	return nil, errors.New("no Certificate message after the ServerHello")
}

// handshakeReader splits TLS records into handshake messages, reading at
// most limit bytes of records.
type handshakeReader struct {
	r     io.Reader
	limit int
	read  int
	buf   []byte
}

// next returns the next handshake message's type and body.
func (h *handshakeReader) next() (byte, []byte, error) {
	for {
		if len(h.buf) >= 4 {
			msgLen := int(h.buf[1])<<16 | int(h.buf[2])<<8 | int(h.buf[3])
			if msgLen > h.limit {
				return 0, nil, fmt.Errorf("handshake message of %d bytes exceeds %d", msgLen, h.limit)
			}
			if len(h.buf) >= 4+msgLen {
				typ, body := h.buf[0], h.buf[4:4+msgLen]
				h.buf = h.buf[4+msgLen:]
				return typ, body, nil
			}
		}
		var hdr [5]byte
		if _, err := io.ReadFull(h.r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, nil, errRefused
			}
			return 0, nil, err
		}
		n := int(hdr[3])<<8 | int(hdr[4])
		if n > maxRecord {
			return 0, nil, fmt.Errorf("TLS record of %d bytes exceeds %d", n, maxRecord)
		}
		if h.read += 5 + n; h.read > h.limit {
			return 0, nil, fmt.Errorf("handshake not complete within %d bytes", h.limit)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(h.r, body); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, nil, errRefused
			}
			return 0, nil, err
		}
		switch hdr[0] {
		case recordAlert:
			return 0, nil, errRefused
		case recordHandshake:
		default:
			return 0, nil, fmt.Errorf("unexpected TLS record type %d in the handshake", hdr[0])
		}
		h.buf = append(h.buf, body...)
	}
}

// parseServerHello parses a ServerHello's body (RFC 5246 7.4.1.3, RFC 8446
// 4.1.3).
func parseServerHello(b []byte) (serverHello, error) {
	s := cryptobyte.String(b)
	var h serverHello
	var random, sessionID []byte
	var compression uint8
	if !s.ReadUint16(&h.version) || !s.ReadBytes(&random, 32) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&sessionID)) || len(sessionID) > 32 ||
		!s.ReadUint16(&h.suite) || !s.ReadUint8(&compression) {
		return serverHello{}, errors.New("malformed ServerHello")
	}
	if s.Empty() {
		return h, nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return serverHello{}, errors.New("malformed ServerHello extensions")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return serverHello{}, errors.New("malformed ServerHello extension")
		}
		if typ == extSupportedVersion {
			if !data.ReadUint16(&h.version) || !data.Empty() {
				return serverHello{}, errors.New("malformed supported_versions in ServerHello")
			}
		}
	}
	return h, nil
}
