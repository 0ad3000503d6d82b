package preload

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Eight sites forked from one warm parent each answer their own SITE_ID,
// each in its own session and process group, as children of the parent.
func TestForkEightSites(t *testing.T) {
	dir := copyFixture(t)
	p, _ := startParent(t, dir)
	info := p.Info()
	if info.SiteIDKind != "int" || info.Settings != "fixtureproj.settings" || !strings.HasPrefix(info.Django, "3.2") {
		t.Errorf("Info = %+v, want SITE_ID kind int, settings fixtureproj.settings, Django 3.2", info)
	}
	var all []*site
	for id := int64(1); id <= 8; id++ {
		all = append(all, forkNoWait(t, p, id))
	}
	for _, s := range all {
		waitAccepting(t, s)
		w := getWhoami(t, s.Addr())
		if fmt.Sprint(w.SiteID) != fmt.Sprint(s.id) || w.PID != s.PID() {
			t.Errorf("site %d answered site_id %v from pid %d, want %d from pid %d", s.id, w.SiteID, w.PID, s.id, s.PID())
		}
		st := procStat(s.PID())
		if len(st) < 4 || st[1] != fmt.Sprint(p.PID()) || st[2] != fmt.Sprint(s.PID()) || st[3] != fmt.Sprint(s.PID()) {
			t.Errorf("site %d: ppid/pgrp/session = %v, want %d/%d/%d", s.id, st[1:4], p.PID(), s.PID(), s.PID())
		}
	}
	if got := len(p.Children()); got != 8 {
		t.Errorf("Children() = %d, want 8", got)
	}
}

// A child's stdout and stderr arrive on the writers given to Fork:
// runserver's banner on stdout, its request log on stderr.
func TestChildLogs(t *testing.T) {
	dir := copyFixture(t)
	p, parentOut := startParent(t, dir)
	s := fork(t, p, 2)
	getWhoami(t, s.Addr())
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.err.String(), `"GET /whoami/ HTTP/1.1" 200`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	wantOut := []string{"Performing system checks...", "System check identified no issues (0 silenced).",
		"Django version 3.2", "Starting development server at http://" + s.Addr() + "/"}
	for _, w := range wantOut {
		if !strings.Contains(s.out.String(), w) {
			t.Errorf("child stdout lacks %q:\n%s", w, s.out)
		}
	}
	if !strings.Contains(s.err.String(), `"GET /whoami/ HTTP/1.1" 200`) {
		t.Errorf("child stderr lacks the request log line:\n%s", s.err)
	}
	if strings.Contains(parentOut.String(), "GET /whoami/") || strings.Contains(parentOut.String(), "Starting development server") {
		t.Errorf("the child's output leaked into the parent's:\n%s", parentOut)
	}
}

// kill -9 of a child: Wait reports 137, and the parent forks the site again.
func TestKillChild(t *testing.T) {
	dir := copyFixture(t)
	p, _ := startParent(t, dir)
	s := fork(t, p, 3)
	if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	code, err := s.Wait()
	if code != 137 || err != nil {
		t.Fatalf("Wait after kill -9 = %d, %v; want 137, nil", code, err)
	}
	again := fork(t, p, 3)
	if w := getWhoami(t, again.Addr()); fmt.Sprint(w.SiteID) != "3" {
		t.Errorf("re-forked site answered %v", w.SiteID)
	}
}
