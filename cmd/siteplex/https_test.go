package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/internal/doctor"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/internal/tlsca"
	"github.com/siteplex/siteplex/sites"
)

// The command side of the engine's HTTPS (docs/https.md, "Serving
// HTTPS"). Every CA lives in a temp CAROOT; no trust store but a temp
// HOME's NSS database is touched.

// makeCA creates a CA in a fresh CAROOT under dir ("" = a temp folder)
// and returns the CAROOT.
func makeCA(t *testing.T, dir string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	caroot := filepath.Join(dir, "ca")
	if _, _, err := tlsca.Ensure(caroot, tlsca.EnsureOptions{Label: "test@siteplex"}); err != nil {
		t.Fatal(err)
	}
	return caroot
}

// TestEngineConfigHTTPS: --https, --https-redirect and their config keys
// over the default (on, on 127.0.0.1:443 and [::1]:443, once the CA
// exists), and the mistakes that are refused.
func TestEngineConfigHTTPS(t *testing.T) {
	caroot := makeCA(t, "")
	withCA := map[string]string{"SITEPLEX_CAROOT": caroot}
	noCA := map[string]string{"SITEPLEX_CAROOT": filepath.Join(t.TempDir(), "none")}
	broken := filepath.Join(t.TempDir(), "broken")
	if err := os.MkdirAll(broken, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, tlsca.CertFile), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, tlsca.KeyFile), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		off      = 1 // HTTPS off
		defaults = 2 // on, default addresses
		given    = 3 // on, the addresses in want
	)
	tests := []struct {
		name     string
		env      map[string]string
		toml     string
		args     []string
		state    int
		want     []string
		redirect bool
		usage    bool   // a usage error (exit 2)
		errHas   string // another error (exit 1) saying this
	}{
		{name: "no CA: off", env: noCA, state: off},
		{name: "CA: on by default", env: withCA, state: defaults},
		{name: "CA, --https off", env: withCA, args: []string{"--https", "off"}, state: off},
		{name: "CA, https = off", env: withCA, toml: `https = "off"`, state: off},
		{name: "CA, config addresses", env: withCA, toml: `https = ["127.0.0.1:9443"]`, state: given, want: []string{"127.0.0.1:9443"}},
		{name: "flags over config", env: withCA, toml: `https = ["127.0.0.1:9443"]`, args: []string{"--https", "127.0.0.1:7443", "--https", "[::1]:7443"},
			state: given, want: []string{"127.0.0.1:7443", "[::1]:7443"}},
		{name: "flag on over config off", env: withCA, toml: `https = "off"`, args: []string{"--https", ":7443"}, state: given, want: []string{":7443"}},
		{name: "config redirect", env: withCA, toml: "https_redirect = true", state: defaults, redirect: true},
		{name: "flag redirect", env: withCA, args: []string{"--https-redirect"}, state: defaults, redirect: true},
		{name: "flag redirect false over config", env: withCA, toml: "https_redirect = true", args: []string{"--https-redirect=false"}, state: defaults},
		{name: "--https off drops the config's redirect", env: withCA, toml: "https_redirect = true", args: []string{"--https", "off"}, state: off},
		{name: "no CA, config redirect false", env: noCA, toml: "https_redirect = false", state: off},

		{name: "off and an address", env: withCA, args: []string{"--https", "off", "--https", "127.0.0.1:8443"}, usage: true},
		{name: "address without port", env: withCA, args: []string{"--https", "localhost"}, usage: true},
		{name: "config address without port", env: withCA, toml: `https = ["localhost"]`, usage: true},
		{name: "config https = on", env: withCA, toml: `https = "on"`, usage: true},
		{name: "redirect with --https off", env: withCA, args: []string{"--https-redirect", "--https", "off"}, usage: true},
		{name: "config redirect with config off", env: withCA, toml: "https = \"off\"\nhttps_redirect = true", usage: true},
		{name: "no CA, --https address", env: noCA, args: []string{"--https", "127.0.0.1:8443"}, errHas: "siteplex trust"},
		{name: "no CA, --https-redirect", env: noCA, args: []string{"--https-redirect"}, errHas: "siteplex trust"},
		{name: "a CA that does not load", env: map[string]string{"SITEPLEX_CAROOT": broken}, errHas: "--https off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := engineConfigEnv(t, tt.env, tt.toml, tt.args...)
			switch {
			case tt.usage:
				if err == nil || !sites.IsUsage(err) {
					t.Fatalf("err %v, want a usage error", err)
				}
				return
			case tt.errHas != "":
				if err == nil || sites.IsUsage(err) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err %v, want an error saying %q", err, tt.errHas)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			h := cfg.HTTPS
			switch tt.state {
			case off:
				if h != nil {
					t.Fatalf("HTTPS on (%+v), want off", h)
				}
				return
			case defaults:
				if h == nil || h.Listen != nil {
					t.Fatalf("HTTPS %+v, want on with the default addresses", h)
				}
			case given:
				if h == nil || !reflect.DeepEqual(h.Listen, tt.want) {
					t.Fatalf("HTTPS %+v, want on %v", h, tt.want)
				}
			}
			if h.Redirect != tt.redirect || h.CA == nil || h.CA.Dir != caroot {
				t.Errorf("redirect %v (want %v), CA %+v", h.Redirect, tt.redirect, h.CA)
			}
		})
	}
}

// waitStderr waits until serve's stderr contains s.
func waitStderr(t *testing.T, sp *serveProc, s string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(sp.stderr.String(), s); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q from serve; stderr:\n%s", s, sp.stderr.String())
		}
	}
}

// httpsLine returns the address of serve's "listening on https://" line.
func httpsLine(t *testing.T, sp *serveProc) string {
	t.Helper()
	waitStderr(t, sp, "siteplex: listening on https://")
	_, rest, _ := strings.Cut(sp.stderr.String(), "siteplex: listening on https://")
	addr, _, _ := strings.Cut(rest, "\n")
	return addr
}

// curlHTTPS runs curl --http2 against name:port at 127.0.0.1, trusting
// only the CA in caroot; it returns the body and the HTTP version.
func curlHTTPS(t *testing.T, caroot, name, port, path string) (body, version string) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		testenv.Missing(t, "curl: %v", err)
	}
	out, err := exec.Command(curl, "-sS", "--http2", "--cacert", filepath.Join(caroot, tlsca.CertFile),
		"--resolve", name+":"+port+":127.0.0.1", "-w", "\n%{http_version}", "https://"+name+":"+port+path).CombinedOutput()
	if err != nil {
		t.Fatalf("curl https://%s:%s%s: %v\n%s", name, port, path, err, out)
	}
	o := strings.TrimSpace(string(out))
	i := strings.LastIndexByte(o, '\n')
	return o[:i+1], o[i+1:]
}

// TestServeHTTPS: `serve --https 127.0.0.1:0` prints the HTTPS line with
// its real port and serves each site over HTTP/2 with X-Forwarded-Proto
// https; `siteplex sites` shows the https URLs; --https off serves plain
// HTTP only although the CA exists.
func TestServeHTTPS(t *testing.T) {
	bin := buildSiteplex(t)
	dir := demoProject(t, bin)
	caroot := makeCA(t, "")
	env := []string{"SITEPLEX_CAROOT=" + caroot}
	sp := startServeEnv(t, bin, dir, env, "--https", "127.0.0.1:0")
	https := httpsLine(t, sp)
	port := https[strings.LastIndexByte(https, ':')+1:]
	if !strings.HasPrefix(https, "127.0.0.1:") || port == "0" {
		t.Fatalf("HTTPS line %q, want 127.0.0.1 with the real port", https)
	}
	for _, s := range []struct{ name, id string }{{"one.localhost", "1"}, {"two.localhost", "2"}, {"static.two.localhost", "2"}} {
		body, version := curlHTTPS(t, caroot, s.name, port, "/whoami")
		if version != "2" || !strings.Contains(body, `"site_id":"`+s.id+`"`) || !strings.Contains(body, `"x_forwarded_proto":"https"`) {
			t.Errorf("%s: HTTP/%s %s; want HTTP/2, SITE_ID %s, X-Forwarded-Proto https", s.name, version, body, s.id)
		}
	}
	cmd := exec.Command(bin, "sites", "--project", dir)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("siteplex sites: %v\n%s", err, out)
	}
	for _, u := range []string{"https://one.localhost:" + port + "/", "https://two.localhost:" + port + "/"} {
		if !strings.Contains(string(out), u) {
			t.Errorf("siteplex sites does not show %s:\n%s", u, out)
		}
	}
	ef, err := devproxy.ReadEngineFile(filepath.Join(dir, ".siteplex"))
	if err != nil || !reflect.DeepEqual(ef.HTTPS, []string{https}) {
		t.Errorf("engine.json: %+v %v", ef, err)
	}
	_ = sp.cmd.Process.Kill()
	_ = sp.cmd.Wait()
	_ = os.Remove(filepath.Join(dir, ".siteplex", "engine.json"))

	sp = startServeEnv(t, bin, dir, env, "--https", "off")
	time.Sleep(300 * time.Millisecond)
	if strings.Contains(sp.stderr.String(), "https://") {
		t.Errorf("--https off still listens for HTTPS:\n%s", sp.stderr.String())
	}
	if code, b := httpGet(t, sp.addr, "one.localhost", "/whoami"); code != 200 || !strings.Contains(string(b), `"x_forwarded_proto":"http"`) {
		t.Errorf("plain HTTP with --https off: %d %s", code, b)
	}
}

// TestServeHTTPSRefusedAsNobody: as uid 65534, with a CA of its own and no
// --https, serve turns HTTPS on by default and port 443 is refused: exit 1
// with the ways out, --https off among them.
func TestServeHTTPSRefusedAsNobody(t *testing.T) {
	testenv.NeedPrivilegedPort(t, 443)
	bin := buildSiteplex(t)
	dir := demoProject(t, bin)
	base := worldReadableDir(t)
	if err := os.Chmod(base, 0o777); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + base, "SITEPLEX_CAROOT=" + filepath.Join(base, "ca"), "DATABASE_URL=", "SITEPLEX_DATABASE_URL="}
	if _, stderr, code := runAsNobody(t, bin, env, "trust", "--store", "none"); code != 0 {
		t.Fatalf("trust as nobody: exit %d\n%s", code, stderr)
	}
	_, stderr, code := runAsNobody(t, bin, env, "serve", "--project", dir, "--listen", "127.0.0.1:0")
	if code != 1 {
		t.Fatalf("serve as nobody with the CA: exit %d, want 1\n%s", code, stderr)
	}
	for _, want := range []string{
		"cannot listen on 127.0.0.1:443 for HTTPS: permission denied",
		"sudo setcap cap_net_bind_service=+ep $(which siteplex)",
		"sudo sysctl net.ipv4.ip_unprivileged_port_start=443",
		"siteplex serve --https 127.0.0.1:8443",
		"siteplex serve --https off",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the message lacks %q:\n%s", want, stderr)
		}
	}
	// The plain listener did not stay behind, nor engine.json.
	if _, err := os.Stat(filepath.Join(dir, ".siteplex", "engine.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("engine.json after the failed start: %v", err)
	}
	// --https off is a way out that works.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := testenv.AsNobody(ctx, t, bin, "serve", "--project", dir, "--listen", "127.0.0.1:0", "--https", "off")
	cmd.Env = append(os.Environ(), env...)
	var out testenv.Buffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "siteplex: listening on 127.0.0.1:"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve --https off as nobody did not start:\n%s", out.String())
		}
	}
}

// TestServeHTTPSDefaultsInNetns: in a private network namespace (so that
// ports 80 and 443 are its own), serve with a CA and no address flags
// listens on 127.0.0.1 and [::1], ports 80 and 443; curl reaches a site
// over HTTP/2 on both, and --https-redirect sends plain HTTP to
// https://NAME/ (port 443 left out). Without IPv6 on the loopback, the
// [::1] addresses are skipped.
func TestServeHTTPSDefaultsInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, for a private network namespace (unshare -n)")
	}
	for _, tool := range []string{"unshare", "ip", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s: %v", tool, err)
		}
	}
	bin := buildSiteplex(t)
	dir := demoProject(t, bin)
	caroot := makeCA(t, "")
	const script = `set -u
ip link set lo up
if [ "$NOV6" = 1 ]; then sysctl -q -w net.ipv6.conf.lo.disable_ipv6=1; fi
"$BIN" serve --project "$DIR" --https-redirect > "$LOG" 2>&1 &
pid=$!
i=0
while ! grep -q 'listening on https://127.0.0.1:443' "$LOG"; do
  i=$((i+1)); [ $i -gt 300 ] && break; sleep 0.1
done
for ip in 127.0.0.1 '[::1]'; do
  if [ "$NOV6" = 1 ] && [ "$ip" != 127.0.0.1 ]; then continue; fi
  echo "curl $ip: $(curl -sS --http2 --cacert "$CAROOT/rootCA.pem" --resolve "one.localhost:443:$ip" -w ' %{http_version}' https://one.localhost/whoami 2>&1 | tr -d '\n')"
done
echo "redirect: $(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' --resolve one.localhost:80:127.0.0.1 http://one.localhost/whoami?x=1 2>&1)"
kill -TERM $pid; wait $pid
echo "exit $?"
cat "$LOG"
`
	for _, tt := range []struct {
		name string
		nov6 string
		want []string
		not  []string
	}{
		{"IPv4 and IPv6", "0", []string{
			"siteplex: listening on 127.0.0.1:80\n", "siteplex: listening on [::1]:80\n",
			"siteplex: listening on https://127.0.0.1:443\n", "siteplex: listening on https://[::1]:443\n",
			`curl 127.0.0.1: {"site_id":"1"`, `curl [::1]: {"site_id":"1"`,
			"redirect: 302 https://one.localhost/whoami?x=1", "exit 0"}, nil},
		{"no IPv6 loopback", "1", []string{
			"siteplex: listening on 127.0.0.1:80\n", "siteplex: listening on https://127.0.0.1:443\n",
			`curl 127.0.0.1: {"site_id":"1"`, "exit 0"}, []string{"[::1]"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_ = os.Remove(filepath.Join(dir, ".siteplex", "engine.json"))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "unshare", "-n", "sh", "-c", script)
			cmd.Env = append(os.Environ(), "BIN="+bin, "DIR="+dir, "LOG="+filepath.Join(t.TempDir(), "serve.log"),
				"CAROOT="+caroot, "SITEPLEX_CAROOT="+caroot, "NOV6="+tt.nov6, "DATABASE_URL=", "SITEPLEX_DATABASE_URL=")
			out, err := cmd.CombinedOutput()
			if err != nil && strings.Contains(string(out), "unshare failed") {
				testenv.Missing(t, "a private network namespace: %s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("lacks %q", w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(string(out), n) {
					t.Errorf("has %q", n)
				}
			}
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, "curl ") && !strings.Contains(l, `"x_forwarded_proto":"https"`) || strings.HasPrefix(l, "curl ") && !strings.HasSuffix(l, " 2") {
					t.Errorf("not HTTP/2 with X-Forwarded-Proto https: %s", l)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

// TestServeHTTPSChromium: after `siteplex trust --store nss` into a temp
// HOME, headless Chromium with that HOME loads a site through the real
// engine (`siteplex serve --https`) with no certificate error, shows the
// site's own page and answer, and the index over https. With
// SITEPLEX_HTTPS_SCREENSHOT set it writes the index's screenshot there
// (docs/https-chromium.png).
func TestServeHTTPSChromium(t *testing.T) {
	chromium(t)
	if _, err := exec.LookPath("certutil"); err != nil {
		testenv.Missing(t, "certutil (Debian package libnss3-tools): %v", err)
	}
	home := t.TempDir()
	caroot := filepath.Join(t.TempDir(), "ca")
	if stdout, stderr, code := runCLI(t, "", map[string]string{"HOME": home, "SITEPLEX_CAROOT": caroot}, "trust", "--store", "nss"); code != 0 {
		t.Fatalf("trust --store nss: exit %d\n%s%s", code, stdout, stderr)
	}
	bin := buildSiteplex(t)
	dir := demoProject(t, bin)
	sp := startServeEnv(t, bin, dir, []string{"SITEPLEX_CAROOT=" + caroot}, "--https", "127.0.0.1:0")
	https := httpsLine(t, sp)
	port := https[strings.LastIndexByte(https, ':')+1:]

	dom, failure := runChromium(t, home, "https://two.localhost:"+port+"/", "")
	if failure != "" || !strings.Contains(dom, "<title>two</title>") || !strings.Contains(dom, "SITE_ID <b>2</b>") {
		t.Fatalf("Chromium and https://two.localhost:%s/: failure %q\n%s", port, failure, dom)
	}
	dom, failure = runChromium(t, home, "https://one.localhost:"+port+"/whoami", "")
	if failure != "" || !strings.Contains(dom, `"site_id":"1"`) || !strings.Contains(dom, `"x_forwarded_proto":"https"`) {
		t.Fatalf("Chromium and https://one.localhost:%s/whoami: failure %q\n%s", port, failure, dom)
	}
	index := "https://siteplex.localhost:" + port + "/"
	dom, failure = runChromium(t, home, index, "")
	if failure != "" || !strings.Contains(dom, "https://one.localhost:"+port+"/") || !strings.Contains(dom, "https://127.0.0.1:"+port) {
		t.Fatalf("Chromium and the index %s: failure %q\n%s", index, failure, dom)
	}
	// A HOME that does not trust the CA gets the certificate error.
	if _, failure := runChromium(t, t.TempDir(), index, ""); failure != "net::ERR_CERT_AUTHORITY_INVALID" {
		t.Errorf("Chromium without the CA: failure %q, want net::ERR_CERT_AUTHORITY_INVALID", failure)
	}
	if shot := os.Getenv("SITEPLEX_HTTPS_SCREENSHOT"); shot != "" {
		runChromium(t, home, index, shot)
		if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
			t.Fatalf("screenshot %s: %v", shot, err)
		}
	}
}

// TestDoctorHTTPSPort: the https_port check follows what serve would do:
// off without a CA or when turned off, the default addresses once the CA
// exists, the given ones otherwise.
func TestDoctorHTTPSPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	withCA := map[string]string{"SITEPLEX_CAROOT": makeCA(t, "")}
	noCA := map[string]string{"SITEPLEX_CAROOT": filepath.Join(t.TempDir(), "none")}
	tests := []struct {
		name   string
		env    map[string]string
		flags  []string
		config sites.HTTPSSetting
		st     doctor.Status
		detail string
		fix    string
	}{
		{"no CA", noCA, nil, sites.HTTPSSetting{}, doctor.OK, "HTTPS is off: no local CA yet", ""},
		{"CA: the defaults", withCA, nil, sites.HTTPSSetting{}, "", "127.0.0.1:443", ""},
		{"CA, --https off", withCA, []string{"off"}, sites.HTTPSSetting{}, doctor.OK, "HTTPS is off: --https says off", ""},
		{"CA, https = off", withCA, nil, sites.HTTPSSetting{Off: true}, doctor.OK, "HTTPS is off: https in siteplex.toml says off", ""},
		{"CA, a busy address", withCA, []string{busy.Addr().String()}, sites.HTTPSSetting{}, doctor.Fail, busy.Addr().String() + " is already in use", "--https 127.0.0.1:8443"},
		{"CA, config address busy", withCA, nil, sites.HTTPSSetting{Addrs: []string{busy.Addr().String()}}, doctor.Fail, busy.Addr().String() + " is already in use", "--https 127.0.0.1:8443"},
		{"no CA, --https address", noCA, []string{"127.0.0.1:8443"}, sites.HTTPSSetting{}, doctor.Fail, "there is no local CA", "siteplex trust"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := doctorHTTPS(&doctorOptions{HTTPS: tt.flags}, &sites.Config{HTTPS: tt.config})
			c := httpsPortCheck(context.Background(), func(k string) string { return tt.env[k] }, h)
			if c.Name != doctor.NameHTTPSPort || tt.st != "" && c.Status != tt.st || !strings.Contains(c.Detail, tt.detail) || !strings.Contains(c.Fix, tt.fix) {
				t.Errorf("%+v, want %s with %q, fix %q", c, tt.st, tt.detail, tt.fix)
			}
			if tt.fix != "siteplex trust" && strings.Contains(c.Fix, "--https off") != (tt.name == "CA: the defaults" && c.Status != doctor.OK) {
				t.Errorf("fix %q: --https off belongs only to a refused default", c.Fix)
			}
		})
	}
}
