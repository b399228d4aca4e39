package ca

import "context"

// IssueHooks is how many functions OnIssue has registered.
func (c *CA) IssueHooks() int {
	if fs := c.issued.Load(); fs != nil {
		return len(*fs)
	}
	return 0
}

// SetVerify sets whether the signatures of an authority's key are checked,
// as if the key were (false) or were not (true) one of Go's own.
func (c *CA) SetVerify(ctx context.Context, name string, verify bool) error {
	a, err := c.authority(ctx, name)
	if err != nil {
		return err
	}
	a.iss.verify = verify
	return nil
}

// SetCRLExtensions makes the gate's prepare step pass each CRL's
// extensions through alter, so a test can inject a field the lint refuses.
func (c *CA) SetCRLExtensions(alter func([]byte) []byte) { c.crlExtensions = alter }
