package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// Whoami is the /whoami/ answer of testdata/django (fixtureproj/views.py)
// and, for the fields it has, of testdata/django-admin: the SITE_ID the
// process serves and the request as it saw it.
type Whoami struct {
	SiteID   int64  `json:"site_id"`
	SiteName string `json:"site_name"`
	Domain   string `json:"domain"`
	Host     string `json:"host"`
	XFF      string `json:"xff"`
	Proto    string `json:"proto"`
	FwdHost  string `json:"fwd_host"`
	PID      int    `json:"pid"`
	Port     string `json:"port"`
}

// GetWhoami asks addr (a site's process, or the engine) for /whoami/
// with Host host ("" = addr), on a fresh connection and bypassing any
// HTTP proxy, and fails the test unless the answer is 200 with that JSON.
func GetWhoami(t testing.TB, addr, host string) Whoami {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/whoami/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s/whoami/ (Host %s): %v", addr, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	var w Whoami
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(b, &w) != nil {
		t.Fatalf("GET %s/whoami/ (Host %s): %s %v\n%.300s", addr, host, resp.Status, err, b)
	}
	return w
}
