package check

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
)

// StartTLS protocols: the plain-text exchange before the TLS handshake.
const (
	XMPP       = "xmpp"        // client-to-server XMPP (RFC 6120 5.4.2), default port 5222
	XMPPServer = "xmpp-server" // server-to-server XMPP, default port 5269
	SMTP       = "smtp"        // RFC 3207, default port 25
	Postgres   = "postgres"    // SSLRequest, default port 5432
)

// DefaultPort is the port a protocol is served on when HOST has none.
func DefaultPort(starttls string) (string, error) {
	switch starttls {
	case "":
		return "443", nil
	case XMPP:
		return "5222", nil
	case XMPPServer:
		return "5269", nil
	case SMTP:
		return "25", nil
	case Postgres:
		return "5432", nil
	}
	return "", fmt.Errorf("--starttls %q is none of xmpp, xmpp-server, smtp and postgres", starttls)
}

// maxPreamble bounds what a server may send before TLS starts.
const maxPreamble = 64 << 10

// startTLS runs the protocol's plain-text exchange on c, after which c
// carries the TLS handshake. domain is the XMPP domain asked for.
func startTLS(c net.Conn, protocol, domain string) error {
	r := bufio.NewReader(io.LimitReader(c, maxPreamble))
	switch protocol {
	case "":
		return nil
	case XMPP, XMPPServer:
		ns := "jabber:client"
		if protocol == XMPPServer {
			ns = "jabber:server"
		}
		if _, err := fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams'>", xmlEscape(domain), ns); err != nil {
			return err
		}
		features, err := readUntil(r, "</stream:features>")
		if err != nil {
			return fmt.Errorf("XMPP server sent no stream features: %w", err)
		}
		if !strings.Contains(features, "urn:ietf:params:xml:ns:xmpp-tls") {
			return fmt.Errorf("XMPP server does not offer STARTTLS for domain %q", domain)
		}
		if _, err := io.WriteString(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
			return err
		}
		answer, err := readUntil(r, "/>")
		if err != nil {
			return fmt.Errorf("XMPP server did not answer STARTTLS: %w", err)
		}
		if !strings.Contains(answer, "<proceed") {
			return fmt.Errorf("XMPP server refused STARTTLS: %s", strings.TrimSpace(answer))
		}
	case SMTP:
		if err := smtpReply(r, "220"); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(c, "EHLO %s\r\n", addressLiteral(c.LocalAddr())); err != nil {
			return err
		}
		if err := smtpReply(r, "250"); err != nil {
			return err
		}
		if _, err := io.WriteString(c, "STARTTLS\r\n"); err != nil {
			return err
		}
		if err := smtpReply(r, "220"); err != nil {
			return err
		}
	case Postgres:
		var req [8]byte
		binary.BigEndian.PutUint32(req[:4], 8)
		binary.BigEndian.PutUint32(req[4:], 80877103) // SSLRequest code
		if _, err := c.Write(req[:]); err != nil {
			return err
		}
		b, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("PostgreSQL server did not answer SSLRequest: %w", err)
		}
		if b != 'S' {
			return fmt.Errorf("PostgreSQL server does not offer TLS (answered %q to SSLRequest)", b)
		}
	default:
		_, err := DefaultPort(protocol)
		return err
	}
	if r.Buffered() > 0 {
		// RFC 3207 5 and CVE-2011-0411: nothing may follow the go-ahead.
		return fmt.Errorf("server sent %d bytes after agreeing to start TLS", r.Buffered())
	}
	return nil
}

// addressLiteral is the client's address as EHLO takes it (RFC 5321 4.1.3).
func addressLiteral(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	switch {
	case !ok:
		return "[127.0.0.1]"
	case ta.IP.To4() != nil:
		return "[" + ta.IP.String() + "]"
	}
	return "[IPv6:" + ta.IP.String() + "]"
}

// readUntil reads from r up to and including the first occurrence of end.
func readUntil(r *bufio.Reader, end string) (string, error) {
	var b bytes.Buffer
	for !bytes.HasSuffix(b.Bytes(), []byte(end)) {
		c, err := r.ReadByte()
		if err != nil {
			return b.String(), err
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// smtpReply reads one (multi-line) SMTP reply and wants its code.
func smtpReply(r *bufio.Reader, code string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("SMTP server closed the connection: %w", err)
		}
		if !strings.HasPrefix(line, code) {
			return fmt.Errorf("SMTP server answered %q, want %s", strings.TrimSpace(line), code)
		}
		if len(line) < 4 || line[3] != '-' {
			return nil
		}
	}
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '<', '>', '&', '\'', '"':
			fmt.Fprintf(&b, "&#%d;", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
