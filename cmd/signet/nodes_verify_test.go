package main

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTwoNodesOneVerifies: of two `signet serve` nodes on one PostgreSQL
// store, one verifies the audit log in the background and the other, which
// does not read it, answers GET /api/v1/audit/verification "follower".
func TestTwoNodesOneVerifies(t *testing.T) {
	c := newCluster(t, 2)
	token, err := os.ReadFile(filepath.Join(c.dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.roots}}}
	state := func(n *nodeProc) string {
		req, _ := http.NewRequest("GET", "https://"+n.addr+"/api/v1/audit/verification", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct{ State string }
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET verification on %s: %d, %v", n.addr, resp.StatusCode, err)
		}
		return v.State
	}
	var states []string
	for range 200 { // each node verifies at its start
		states = []string{state(c.nodes[0]), state(c.nodes[1])}
		if !slices.Contains(states, "pending") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	slices.Sort(states)
	if !slices.Equal(states, []string{"follower", "intact"}) {
		t.Fatalf("the nodes' verifications: %v; want one intact, one follower", states)
	}
}
