package ca_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlyCASigns keeps the one issuance path the only one: outside ca (and
// kms, which implements signers, and sshca, which signs SSH certificates),
// no production code creates certificates or asks a key to sign.
func TestOnlyCASigns(t *testing.T) {
	allowed := map[string]bool{"internal/ca": true, "internal/kms": true, "internal/sshca": true}
	forbidden := map[string]bool{
		"CreateCertificate": true, "CreateRevocationList": true, "CreateResponse": true,
		"Sign": true, "SignMessage": true, "SignCert": true, "SignWithAlgorithm": true,
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			for a := range allowed {
				if rel == a || strings.HasPrefix(rel, a+"/") {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			// A signer's Sign takes (rand, digest, opts); big.Int's Sign() takes nothing.
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && forbidden[sel.Sel.Name] && len(call.Args) >= 2 {
				found = append(found, fset.Position(call.Pos()).String()+": "+sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Fatalf("only %d files checked; is the walk rooted right (%s)?", checked, root)
	}
	if len(found) > 0 {
		t.Errorf("signing outside the issuance path:\n%s", strings.Join(found, "\n"))
	}
}
