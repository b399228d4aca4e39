package lint

import (
	"fmt"
	"sort"

	zx509 "github.com/zmap/zcrypto/x509"
	zl "github.com/zmap/zlint/v3/lint"

	"signet/internal/errs"
)

// builtCRL is one revocation-list lint made and configured once, as built
// is for certificates.
type builtCRL struct {
	meta *zl.RevocationListLint
	lint zl.RevocationListLintInterface
}

// run is zlint's RevocationListLint.Execute on the built instance:
// CheckApplies, the lint's effective dates (by thisUpdate), Execute; a lint
// that panics is Fatal.
func (b builtCRL) run(r *zx509.RevocationList) (res *zl.LintResult) {
	defer func() {
		if err := recover(); err != nil {
			res = &zl.LintResult{Status: zl.Fatal, Details: fmt.Sprintf("%s panicked: %v", b.meta.Name, err)}
		}
	}()
	if !b.lint.CheckApplies(r) {
		return notApplicable
	}
	if !b.meta.CheckEffective(r) {
		return notEffective
	}
	return b.lint.Execute(r)
}

// CheckCRL parses der as zcrypto does and runs every revocation-list lint
// of the gate's sources, the Baseline Requirements' ones on every CRL (they
// do not depend on a certificate's purpose) but for those in Excluded. It
// returns errs.Rejected listing each lint that ended at Error or Fatal, as
// Check does for certificates.
func (g *Gate) CheckCRL(der []byte) error {
	r, err := zx509.ParseRevocationList(der)
	if err != nil {
		return errs.Wrap(errs.Rejected, err, "CRL cannot be parsed for linting")
	}
	var fs Findings
	for _, l := range g.crlLints {
		if res := l.run(r); res.Status == zl.Error || res.Status == zl.Fatal {
			fs = append(fs, Finding{Lint: l.meta.Name, Status: res.Status.String(), Details: res.Details})
		}
	}
	if len(fs) == 0 {
		return nil
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].Lint < fs[j].Lint })
	return errs.Wrap(errs.Rejected, fs, "CRL fails lint")
}
