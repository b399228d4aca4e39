// Package lint owns the zlint gate every certificate and CRL passes before
// a CA key signs it: package ca completes the to-be-signed certificate or
// CRL with a placeholder signature as long as the CA key's, hands the DER
// here, and has the CA key sign that very TBS only if the gate passes.
package lint

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	zx509 "github.com/zmap/zcrypto/x509"
	_ "github.com/zmap/zlint/v3" // registers every lint in the global registry
	zl "github.com/zmap/zlint/v3/lint"
	"github.com/zmap/zlint/v3/util"

	"signet/internal/errs"
)

// Gate runs a fixed set of zlint lints. It is immutable after New, so one
// Gate serves concurrent issuance without locking.
type Gate struct {
	registry zl.Registry
	lints    []built
	crlLints []builtCRL
}

// built is one lint made and configured once. zlint's own Execute makes
// and configures a fresh instance for every certificate (reflection over
// the configuration; some lints compile a regexp), a sixth of the gate's
// time. zlint's lints keep only their configuration and what their
// constructor computed, and read them while linting, so one instance
// serves every certificate, concurrently.
type built struct {
	meta *zl.CertificateLint
	lint zl.CertificateLintInterface
}

// Sources are the lint families the gate runs: RFC 5280 and the RFCs it
// builds on (algorithms, IDNs), the CA/Browser Forum Baseline Requirements
// (zlint applies those only to certificates usable for serverAuth, and only
// when NotBefore is after each rule's effective date), and the community
// lints. Root-program (Mozilla, Apple, Chrome), EV, S/MIME, code signing,
// ETSI and CT (RFC 6962) lints are about publicly trusted certificates and
// are not run.
//
// Because BR rules apply by NotBefore, the gate tightens on its own as dates
// pass: serverAuth leaves may live at most 200 days from 2026-03-15, 100 days
// from 2027-03-15 and 47 days from 2029-03-15 (CA/B Forum ballot SC-081).
// signet's default of about a month stays inside all three.
var Sources = zl.SourceList{
	zl.RFC5280, zl.RFC5480, zl.RFC5891, zl.RFC3279, zl.RFC8813,
	zl.CABFBaselineRequirements, zl.Community,
}

// New builds the gate's registry once; building it per certificate would
// cost more than running it.
func New() (*Gate, error) {
	names := make([]string, len(Excluded))
	for i, e := range Excluded {
		names[i] = e.Name
	}
	// Filter refuses an exclusion that names no lint (a typo or a zlint
	// rename), so nothing we meant to skip runs, nor the reverse, silently.
	reg, err := zl.GlobalRegistry().Filter(zl.FilterOptions{IncludeSources: Sources, ExcludeNames: names})
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "cannot build the lint registry")
	}
	if len(reg.Names()) == 0 {
		return nil, errs.New(errs.Internal, "the lint registry is empty")
	}
	for _, w := range Waived {
		if !slices.Contains(reg.Names(), w.Name) {
			return nil, errs.New(errs.Internal, "waived lint %s is not one the gate runs", w.Name)
		}
	}
	g := &Gate{registry: reg}
	config := reg.GetConfiguration()
	for _, meta := range reg.CertificateLints().Lints() {
		l := meta.Lint()
		if err := config.MaybeConfigure(l, meta.Name); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "cannot configure lint %s", meta.Name)
		}
		g.lints = append(g.lints, built{meta: meta, lint: l})
	}
	for _, meta := range reg.RevocationListLints().Lints() {
		l := meta.Lint()
		if err := config.MaybeConfigure(l, meta.Name); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "cannot configure lint %s", meta.Name)
		}
		g.crlLints = append(g.crlLints, builtCRL{meta: meta, lint: l})
	}
	return g, nil
}

// notApplicable and notEffective are the results of lints that do not run;
// most of the gate's lints end so for any one certificate, and the callers
// only read results.
var (
	notApplicable = &zl.LintResult{Status: zl.NA}
	notEffective  = &zl.LintResult{Status: zl.NE}
)

// run is zlint's CertificateLint.Execute on the built instance: each
// family of Baseline Requirements applies to its kind of certificate only,
// then CheckApplies, the lint's
// effective dates, Execute; a lint that panics is Fatal.
func (b built) run(c *zx509.Certificate) (r *zl.LintResult) {
	defer func() {
		if err := recover(); err != nil {
			r = &zl.LintResult{Status: zl.Fatal, Details: fmt.Sprintf("%s panicked: %v", b.meta.Name, err)}
		}
	}()
	if !b.meta.OverrideFrameworkFilter {
		switch {
		case b.meta.Source == zl.CABFBaselineRequirements && !util.IsServerAuthCert(c),
			b.meta.Source == zl.CABFSMIMEBaselineRequirements && !util.IsEmailProtectionCert(c),
			b.meta.Source == zl.CABFCSBaselineRequirements && !util.IsCodeSigning(c.PolicyIdentifiers):
			return notApplicable
		}
	}
	if !b.lint.CheckApplies(c) {
		return notApplicable
	}
	if !b.meta.CheckEffective(c) {
		return notEffective
	}
	return b.lint.Execute(c)
}

// waived reports whether a waiver excuses the lint's failure on c.
func waived(name string, c *zx509.Certificate) bool {
	for _, w := range Waived {
		if w.Name == name && w.Applies(c) {
			return true
		}
	}
	return false
}

// Finding is one lint that failed at Error or Fatal level.
type Finding struct {
	Lint    string
	Status  string // "error" or "fatal"
	Details string
}

// Findings is every failed lint of one certificate; it is the cause inside
// the errs.Rejected that Check returns.
type Findings []Finding

func (fs Findings) Error() string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.Lint
		if f.Details != "" {
			s[i] += " (" + f.Details + ")"
		}
	}
	return strings.Join(s, "; ")
}

// Check parses der as zcrypto does and runs every lint of the gate. It
// returns errs.Rejected listing each lint that ended at Error or Fatal;
// Warn and Notice results do not refuse a certificate.
func (g *Gate) Check(der []byte) error {
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		return errs.Wrap(errs.Rejected, err, "certificate cannot be parsed for linting")
	}
	// zcrypto decides "self-signed" by verifying the signature, but a draft
	// carries a placeholder signature, so a root's draft would be linted as a
	// subordinate CA (and asked for a CRL distribution point). A CA
	// certificate naming itself as issuer with its own key identifier as
	// the authority key identifier is signed by its own key: a root.
	if c.IsCA && bytes.Equal(c.RawSubject, c.RawIssuer) && len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, c.AuthorityKeyId) {
		c.SelfSigned = true
	}
	// This is zlint.LintCertificateEx without its per-call sorted name list
	// and result map, which cost a tenth of the gate's time.
	var fs Findings
	for _, l := range g.lints {
		r := l.run(c)
		if (r.Status == zl.Error || r.Status == zl.Fatal) && !waived(l.meta.Name, c) {
			fs = append(fs, Finding{Lint: l.meta.Name, Status: r.Status.String(), Details: r.Details})
		}
	}
	if len(fs) == 0 {
		return nil
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Lint < fs[j].Lint })
	return errs.Wrap(errs.Rejected, fs, "certificate fails lint")
}
