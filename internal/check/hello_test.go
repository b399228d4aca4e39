package check

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

// goServer is a crypto/tls server on loopback that answers each
// connection's handshake with cfg (and a fresh P-256 certificate).
func goServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hello.test"}, DNSNames: []string{"hello.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// exchange sends one raw ClientHello to addr and reads the answer.
func exchange(t *testing.T, addr string, version uint16, offer ...uint16) (serverHello, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(clientHello(version, offer, "hello.test", [32]byte{1})); err != nil {
		t.Fatal(err)
	}
	return readServerHello(c)
}

// TestClientHello: Go's TLS server understands the hand-built ClientHello,
// picks from what it offers, and refuses what it does not accept.
func TestClientHello(t *testing.T) {
	addr := goServer(t, &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}})
	h, err := exchange(t, addr, versionTLS12, 0xc009, 0xc02b)
	if err != nil || h.version != versionTLS12 || h.suite != 0xc02b && h.suite != 0xc009 {
		t.Errorf("TLS 1.2 with two suites the server has: %+v, %v", h, err)
	}
	h, err = exchange(t, addr, versionTLS12, 0xc009)
	if err != nil || h.suite != 0xc009 {
		t.Errorf("TLS 1.2 with the CBC suite only: %+v, %v; want suite 0xc009", h, err)
	}
	if h, err := exchange(t, addr, versionTLS12, 0x002f); !errors.Is(err, errRefused) {
		t.Errorf("a suite the server lacks: %+v, %v; want refused", h, err)
	}
	if h, err := exchange(t, addr, versionTLS10, 0xc009); !errors.Is(err, errRefused) {
		t.Errorf("TLS 1.0 to a TLS 1.2 server: %+v, %v; want refused", h, err)
	}
}

// TestReadServerHelloSplit: a ServerHello split over records, with a
// supported_versions extension, is read whole.
func TestReadServerHelloSplit(t *testing.T) {
	body := []byte{0x03, 0x03}
	body = append(body, make([]byte, 32)...)
	body = append(body, 0, 0x13, 0x01, 0, 0, 6, 0, 43, 0, 2, 0x03, 0x04)
	msg := append([]byte{2, 0, 0, byte(len(body))}, body...)
	var rec []byte
	for _, part := range [][]byte{msg[:3], msg[3:20], msg[20:]} {
		rec = append(rec, 22, 3, 3, 0, byte(len(part)))
		rec = append(rec, part...)
	}
	h, err := readServerHello(bytes.NewReader(rec))
	if err != nil || h.version != versionTLS13 || h.suite != 0x1301 {
		t.Errorf("got %+v, %v; want TLS 1.3, 0x1301", h, err)
	}
}

// FuzzReadServerHello: whatever a server sends, the readers return a
// ServerHello (or the certificates of its first flight) or an error, never
// read past their bounds and never panic.
// The corpus in testdata/fuzz holds a real ServerHello of Go's server, an
// alert, a split one and truncations.
func FuzzReadServerHello(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		_, err := readServerHello(r)
		if read := len(data) - r.Len(); read > maxHello+5 {
			t.Fatalf("read %d bytes, bound %d (%v)", read, maxHello, err)
		}
		r = bytes.NewReader(data)
		certs, err := readCertificates(r)
		if read := len(data) - r.Len(); read > maxFlight+5 {
			t.Fatalf("read %d bytes for the certificates, bound %d (%v)", read, maxFlight, err)
		}
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
	})
}
