package sshca

import (
	"encoding/binary"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"
)

// KRL is an OpenSSH key revocation list (PROTOCOL.krl in OpenSSH), as
// sshd's RevokedKeys, ssh's RevokedHostKeys and ssh-keygen -Q read it.
// signet writes it unsigned: OpenSSH 9.4 and later refuse signed KRLs, and
// the file travels by the same trusted means as the trust lines.
type KRL struct {
	Version      uint64 // grows with every change
	Generated    time.Time
	Comment      string
	Certificates []KRLCertificates
	Keys         []ssh.PublicKey // revoked plain keys (CA keys): their certificates are refused too
}

// KRLCertificates revokes certificates of one CA key.
type KRLCertificates struct {
	CA      ssh.PublicKey // nil: any CA (key IDs only make sense then)
	Serials []uint64
	KeyIDs  []string
}

// Format constants of PROTOCOL.krl.
const (
	krlMagic          = "SSHKRL\n\x00"
	krlFormatVersion  = 1
	krlCertificates   = 1
	krlExplicitKey    = 2
	krlCertSerialList = 0x20
	krlCertKeyID      = 0x23
)

// Marshal encodes the KRL. Serials are sorted and de-duplicated, which
// OpenSSH does not need but makes the file deterministic.
func (k *KRL) Marshal() []byte {
	b := []byte(krlMagic)
	b = binary.BigEndian.AppendUint32(b, krlFormatVersion)
	b = binary.BigEndian.AppendUint64(b, k.Version)
	b = binary.BigEndian.AppendUint64(b, uint64(k.Generated.Unix()))
	b = binary.BigEndian.AppendUint64(b, 0) // flags: none defined
	b = appendString(b, nil)                // reserved
	b = appendString(b, []byte(k.Comment))
	for _, sec := range k.Certificates {
		var s []byte
		if sec.CA != nil {
			s = appendString(s, sec.CA.Marshal())
		} else {
			s = appendString(s, nil)
		}
		s = appendString(s, nil) // reserved
		if serials := sortedSerials(sec.Serials); len(serials) > 0 {
			var list []byte
			for _, n := range serials {
				list = binary.BigEndian.AppendUint64(list, n)
			}
			s = append(s, krlCertSerialList)
			s = appendString(s, list)
		}
		if len(sec.KeyIDs) > 0 {
			ids := slices.Clone(sec.KeyIDs)
			slices.Sort(ids)
			var list []byte
			for _, id := range slices.Compact(ids) {
				list = appendString(list, []byte(id))
			}
			s = append(s, krlCertKeyID)
			s = appendString(s, list)
		}
		b = append(b, krlCertificates)
		b = appendString(b, s)
	}
	if len(k.Keys) > 0 {
		var s []byte
		for _, key := range k.Keys {
			s = appendString(s, key.Marshal())
		}
		b = append(b, krlExplicitKey)
		b = appendString(b, s)
	}
	return b
}

func sortedSerials(in []uint64) []uint64 {
	out := slices.Clone(in)
	slices.Sort(out)
	// Serial 0 means "no serial" to OpenSSH, which never revokes it by serial.
	return slices.DeleteFunc(slices.Compact(out), func(n uint64) bool { return n == 0 })
}

func appendString(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
