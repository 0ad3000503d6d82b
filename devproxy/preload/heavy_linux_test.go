package preload

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
)

// copyAdminFixture copies testdata/django-admin (the admin and several
// contrib apps; see its README), migrates it and gives it 8 sites.
func copyAdminFixture(t testing.TB) string {
	t.Helper()
	return testenv.DjangoFixtureSites(t, "django-admin", 8)
}

// plain starts `python manage.py runserver 127.0.0.1:PORT --noreload` as
// the supervisor's local runner does (own group), with the site's env.
type plain struct {
	cmd  *exec.Cmd
	addr string
	out  *testenv.Buffer
}

func startPlain(t testing.TB, dir string, id int64, env ...string) *plain {
	t.Helper()
	port := testenv.MustFreePort(t)
	pl := &plain{addr: "127.0.0.1:" + strconv.Itoa(port), out: &testenv.Buffer{}}
	pl.cmd = exec.Command(testenv.Python, "manage.py", "runserver", pl.addr, "--noreload")
	pl.cmd.Dir = dir
	pl.cmd.Env = append(parentEnv("plain", env...), "SITE_ID="+strconv.FormatInt(id, 10), "PORT="+strconv.Itoa(port))
	pl.cmd.Stdout, pl.cmd.Stderr = pl.out, pl.out
	pl.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := pl.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pl.stop)
	return pl
}

func (pl *plain) stop() {
	_ = syscall.Kill(-pl.cmd.Process.Pid, syscall.SIGKILL)
	_ = pl.cmd.Wait()
}

func (pl *plain) waitAccepting(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if code, _, err := get(pl.addr, "", "/whoami/"); err == nil && code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plain runserver on %s not serving after a minute:\n%s", pl.addr, pl.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// csrfToken matches the per-request CSRF token in a form.
var csrfToken = regexp.MustCompile(`name="csrfmiddlewaretoken" value="[^"]*"`)

// On the admin fixture, a forked child answers like plain runserver: its
// site, the admin, the staticfiles handler (DEBUG), the sitemap, a 404;
// and prints the same lines.
func TestForkedMatchesRunserver(t *testing.T) {
	dir := copyAdminFixture(t)
	p, _ := startParent(t, dir)
	forked := fork(t, p, 1)
	pl := startPlain(t, dir, 1)
	pl.waitAccepting(t)
	for _, path := range []string{"/whoami/", "/admin/login/", "/static/admin/css/base.css", "/sitemap.xml", "/nope/", "/admin/catalog/product/"} {
		pc, pb, perr := get(pl.addr, "", path)
		fc, fb, ferr := get(forked.Addr(), "", path)
		if perr != nil || ferr != nil || pc != fc {
			t.Errorf("%s: plain %d %v, forked %d %v", path, pc, perr, fc, ferr)
			continue
		}
		if path == "/whoami/" {
			continue // the pid differs
		}
		norm := func(b []byte, addr string) string {
			return csrfToken.ReplaceAllString(strings.ReplaceAll(string(b), addr, "ADDR"), "CSRF")
		}
		if a, b := norm(pb, pl.addr), norm(fb, forked.Addr()); a != b {
			t.Errorf("%s: plain and forked bodies differ:\nplain:  %.300s\nforked: %.300s", path, a, b)
		}
	}
	if w := testenv.GetWhoami(t, fork(t, p, 2).Addr(), ""); w.SiteID != 2 {
		t.Errorf("site 2 answered %v", w.SiteID)
	}
	// Every line plain runserver printed, but for the date and the request
	// log, the forked child printed too.
	forkedOut := strings.ReplaceAll(forked.out.String()+forked.err.String(), forked.Addr(), "ADDR")
	for _, l := range strings.Split(strings.ReplaceAll(pl.out.String(), pl.addr, "ADDR"), "\n") {
		if l == "" || requestLog.MatchString(l) || dateLine.MatchString(l) {
			continue
		}
		if !strings.Contains(forkedOut, l) {
			t.Errorf("plain runserver printed %q; the forked child did not:\n%s", l, forkedOut)
		}
	}
}

var (
	requestLog = regexp.MustCompile(`^\[\d\d/\w+/\d{4} `)
	dateLine   = regexp.MustCompile(`^\w+ \d\d, \d{4} - \d\d:\d\d:\d\d$`)
)
