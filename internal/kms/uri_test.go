package kms_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"signet/internal/errs"
	"signet/internal/kms"
)

func slot(n uint) *uint { return &n }

func TestParseURI(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *kms.URI
		err  string // substring of the error; "" means success
	}{
		{"token and object", "pkcs11:token=ca;object=xmpp-ca", &kms.URI{Token: "ca", Object: "xmpp-ca"}, ""},
		{"scheme case", "PKCS11:token=ca", &kms.URI{Token: "ca"}, ""},
		{"empty", "pkcs11:", &kms.URI{}, ""},
		{"id bytes", "pkcs11:token=ca;id=%01%02%fF", &kms.URI{Token: "ca", ID: []byte{1, 2, 0xff}}, ""},
		{"percent in label", "pkcs11:token=My%20Token%3b;object=a%2Fb", &kms.URI{Token: "My Token;", Object: "a/b"}, ""},
		{"all path attrs", "pkcs11:token=t;manufacturer=SoftHSM%20project;serial=abc;model=SoftHSM%20v2;slot-id=7;type=private",
			&kms.URI{Token: "t", Manufacturer: "SoftHSM project", Serial: "abc", Model: "SoftHSM v2", SlotID: slot(7), Type: "private"}, ""},
		{"query", "pkcs11:token=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/signet/pin",
			&kms.URI{Token: "ca", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINSource: "file:/etc/signet/pin"}, ""},
		{"pin-source file URI", "pkcs11:token=ca?pin-source=file:///run/pin", &kms.URI{Token: "ca", PINSource: "file:/run/pin"}, ""},
		{"pin-source env", "pkcs11:token=ca?pin-source=env:CA_PIN&module-name=softhsm2", &kms.URI{Token: "ca", PINSource: "env:CA_PIN", ModuleName: "softhsm2"}, ""},
		{"vendor attrs ignored", "pkcs11:token=ca;x-foo=1?x-bar=2", &kms.URI{Token: "ca"}, ""},
		{"library attrs accepted", "pkcs11:library-manufacturer=OpenSC;library-version=1.2", &kms.URI{}, ""},

		{"pin-value refused", "pkcs11:token=ca?pin-value=123456", nil, "pin-value"},
		{"literal pin-source refused", "pkcs11:token=ca?pin-source=123456", nil, "env:VAR, file:PATH, prompt or unlock"},
		{"wrong scheme", "pkcs12:token=ca", nil, "must start with pkcs11:"},
		{"no scheme", "token=ca", nil, "must start with pkcs11:"},
		{"unknown attr", "pkcs11:token=ca;objekt=x", nil, `unknown path attribute "objekt"`},
		{"unknown query attr", "pkcs11:token=ca?pin=1", nil, `unknown query attribute "pin"`},
		{"repeated", "pkcs11:token=a;token=b", nil, "appears twice"},
		{"no value", "pkcs11:token", nil, "has no value"},
		{"bad percent", "pkcs11:id=%0g", nil, "percent-encoding"},
		{"truncated percent", "pkcs11:id=%0", nil, "percent-encoding"},
		{"bad type", "pkcs11:type=secret", nil, "type"},
		{"bad slot", "pkcs11:slot-id=-1", nil, "slot-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kms.ParseURI(tt.in)
			if tt.err != "" {
				wantKind(t, err, errs.Malformed, tt.err)
				if strings.Contains(tt.in, "123456") && strings.Contains(err.Error(), "123456") {
					t.Errorf("error echoes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseURI(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			again, err := kms.ParseURI(kms.MarshalURI(got))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip via %q: %+v, %v", kms.MarshalURI(got), again, err)
			}
		})
	}
}

// TestRedactAndSplit: a pin-value never survives Redact, even in a URI
// ParseURI refuses for another reason first; SplitURI takes module-path and
// pin-source out of a URI and leaves the rest as it was written.
func TestRedactAndSplit(t *testing.T) {
	for _, uri := range []string{
		"pkcs11:token=ca;objekt=x?pin-value=123456",
		"pkcs11:pin-value=123456;token=ca",
		"pkcs12:token=ca?module-path=/x.so&pin-value=123456&pin-source=env:P",
		"pkcs11:token=ca?pin-value=123456",
	} {
		if r := kms.Redact(uri); strings.Contains(r, "123456") || !strings.Contains(r, "pin-value=xxxxx") {
			t.Errorf("Redact(%q) = %q", uri, r)
		}
		if !kms.HasPINValue(uri) || strings.Contains(kms.StripPINValue(uri), "pin-value") {
			t.Errorf("%q: HasPINValue %v, StripPINValue %q", uri, kms.HasPINValue(uri), kms.StripPINValue(uri))
		}
		_, err := kms.ParseURI(uri)
		if err == nil || strings.Contains(err.Error(), "123456") {
			t.Errorf("ParseURI(%q): %v", uri, err)
		}
		m := kms.NewManager(kms.Options{})
		for _, f := range []func() error{
			func() error { _, err := m.Signer(context.Background(), uri); return err },
			func() error { _, err := m.Generate(context.Background(), uri, kms.ECDSAP256); return err },
			func() error { _, err := m.List(context.Background(), uri); return err },
		} {
			if err := f(); err == nil || strings.Contains(err.Error(), "123456") {
				t.Errorf("%q: %v", uri, err)
			}
		}
		m.Close()
	}
	if kms.HasPINValue("pkcs11:token=ca;object=a?module-path=/x.so") {
		t.Error("HasPINValue without one")
	}

	bare, label, tok, ok, err := kms.SplitURI("pkcs11:token=ca;serial=42;object=root;x-v=1?module-path=/usr/lib/p11.so&pin-source=env:PIN&x-q=2")
	if err != nil || !ok || bare != "pkcs11:token=ca;serial=42;object=root;x-v=1?x-q=2" || label != "ca" ||
		tok != (kms.Token{Module: "/usr/lib/p11.so", PIN: "env:PIN", Serial: "42"}) {
		t.Errorf("SplitURI: %q %q %+v %v %v", bare, label, tok, ok, err)
	}
	if bare, _, _, ok, err := kms.SplitURI("pkcs11:token=ca;object=root?module-path=/x.so"); err != nil || !ok || bare != "pkcs11:token=ca;object=root" {
		t.Errorf("SplitURI: %q %v %v", bare, ok, err)
	}
	for _, uri := range []string{"pkcs11:token=ca;object=root", "file:keys/root.key"} {
		if bare, _, _, ok, err := kms.SplitURI(uri); err != nil || ok || bare != uri {
			t.Errorf("SplitURI(%q): %q %v %v", uri, bare, ok, err)
		}
	}
	_, _, _, _, err = kms.SplitURI("pkcs11:serial=42;object=root?module-path=/x.so")
	wantKind(t, err, errs.Malformed, "token=LABEL")
}

func TestMarshalURI(t *testing.T) {
	u := &kms.URI{Token: "my ca", Object: "a;b/c", ID: []byte{0xab, 'z'}, ModulePath: "/usr/lib/p11.so", PINSource: "env:PIN"}
	want := "pkcs11:token=my%20ca;object=a%3Bb%2Fc;id=%AB%7A?module-path=/usr/lib/p11.so&pin-source=env:PIN"
	if got := kms.MarshalURI(u); got != want {
		t.Errorf("MarshalURI = %q, want %q", got, want)
	}
}

func FuzzParseURI(f *testing.F) {
	f.Add("pkcs11:token=ca;object=xmpp-ca")
	f.Add("pkcs11:token=ca;id=%01%02?module-path=/x.so&pin-source=env:PIN")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := kms.ParseURI(s)
		if err != nil {
			if errs.KindOf(err) != errs.Malformed {
				t.Fatalf("kind %v for %q: %v", errs.KindOf(err), s, err)
			}
			return
		}
		m := kms.MarshalURI(u)
		again, err := kms.ParseURI(m)
		if err != nil {
			t.Fatalf("ParseURI(MarshalURI(ParseURI(%q))) = %q: %v", s, m, err)
		}
		if !reflect.DeepEqual(u, again) {
			t.Fatalf("round trip %q -> %q: %+v != %+v", s, m, u, again)
		}
	})
}

func TestParseSource(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"prompt", "prompt", true},
		{"env:CA_PIN", "env:CA_PIN", true},
		{"env:_x1", "env:_x1", true},
		{"file:/etc/signet/pin", "file:/etc/signet/pin", true},
		{"file:pin.txt", "file:pin.txt", true},
		{"file:///etc/pin", "file:/etc/pin", true},
		{"1234", "", false},
		{"hunter2", "", false},
		{"", "", false},
		{"env:", "", false},
		{"env:1X", "", false},
		{"env:A-B", "", false},
		{"file:", "", false},
		{"pin:1234", "", false},
		{"Prompt", "", false},
	}
	for _, tt := range tests {
		got, err := kms.ParseSource(tt.in)
		if !tt.ok {
			if err == nil {
				t.Errorf("ParseSource(%q) accepted", tt.in)
				continue
			}
			if strings.HasPrefix(tt.in, "env:") || strings.HasPrefix(tt.in, "file:") {
				wantKind(t, err, errs.Malformed, tt.in) // a name, not a secret: say which
				continue
			}
			wantKind(t, err, errs.Malformed, "PINs never go in config or argv; use env:VAR, file:PATH, prompt or unlock")
			if len(tt.in) > 3 && strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParseSource(%q) echoes it: %v", tt.in, err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("ParseSource(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSourceRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	t.Setenv("SIGNET_SRC", "from env\n")

	tests := []struct {
		name string
		src  kms.Source
		want string
		kind errs.Kind
	}{
		{"env", "env:SIGNET_SRC", "from env", 0},
		{"env unset", "env:SIGNET_SRC_UNSET", "", errs.NotFound},
		{"file", kms.Source("file:" + write("pin", "1234\n", 0o600)), "1234", 0},
		{"only one newline trimmed", kms.Source("file:" + write("pin2", "12 34\n\n", 0o400)), "12 34\n", 0},
		{"crlf", kms.Source("file:" + write("pin3", "abc\r\n", 0o600)), "abc", 0},
		{"group readable", kms.Source("file:" + write("pin4", "1234", 0o640)), "", errs.Rejected},
		{"world readable", kms.Source("file:" + write("pin5", "1234", 0o604)), "", errs.Rejected},
		{"empty", kms.Source("file:" + write("pin6", "\n", 0o600)), "", errs.Malformed},
		{"missing file", kms.Source("file:" + filepath.Join(dir, "nope")), "", errs.NotFound},
		{"literal", "1234", "", errs.Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.src.Read("PIN for token \"ca\"")
			if tt.want == "" {
				wantKind(t, err, tt.kind, `PIN for token "ca"`)
				if tt.name == "group readable" && !strings.Contains(err.Error(), "chmod 600") {
					t.Errorf("no hint in %v", err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Read = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
