package ca

// IssueHooks is how many functions OnIssue has registered.
func (c *CA) IssueHooks() int {
	if fs := c.issued.Load(); fs != nil {
		return len(*fs)
	}
	return 0
}
