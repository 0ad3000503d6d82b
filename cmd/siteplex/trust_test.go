package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/internal/tlsca"
	"github.com/siteplex/siteplex/internal/truststore"
)

func TestTrustUsage(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir(), "SITEPLEX_CAROOT": filepath.Join(t.TempDir(), "ca")}
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"trust", "--store", "browser"}, 2, `--store "browser": use system, nss, all or none`},
		{[]string{"untrust", "--store", "x"}, 2, `--store "x"`},
		{[]string{"trust", "--domain", "com", "--store", "none"}, 2, "whole top-level domain"},
		{[]string{"trust", "--domain", "*.example.gh", "--store", "none"}, 2, "not a host name"},
		{[]string{"trust", "extra"}, 2, "unknown command"},
	}
	for _, tt := range tests {
		_, stderr, code := runCLI(t, "", env, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.err)
		}
	}
	if _, err := os.Stat(env["SITEPLEX_CAROOT"]); err == nil {
		t.Fatal("a usage error created the CA")
	}
}

// TestTrustStoreNone: --store none only creates the CA; the JSON shape;
// untrust --delete removes it; nothing is created without `trust`.
func TestTrustStoreNone(t *testing.T) {
	caroot := filepath.Join(t.TempDir(), "ca")
	env := map[string]string{"HOME": t.TempDir(), "SITEPLEX_CAROOT": caroot}
	stdout, stderr, code := runCLI(t, "", env, "untrust", "--store", "none", "--json")
	if code != 0 || !strings.Contains(stdout, `"ca": "absent"`) {
		t.Fatalf("untrust without a CA: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(caroot); err == nil {
		t.Fatal("untrust created the CA")
	}
	stdout, stderr, code = runCLI(t, "", env, "trust", "--store", "none", "--json", "--domain", "example.gh")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	var keys []string
	for k := range rep {
		keys = append(keys, k)
	}
	if len(keys) != 8 || rep["ca"] != "created" || rep["caroot"] != caroot || rep["cert_file"] != filepath.Join(caroot, "rootCA.pem") ||
		fmt.Sprint(rep["scope"]) != "[localhost *.localhost example.gh *.example.gh 127.0.0.0/8 ::1]" || fmt.Sprint(rep["stores"]) != "[]" ||
		!strings.HasPrefix(rep["name"].(string), "siteplex-") || len(rep["sha256"].(string)) != 64 {
		t.Fatalf("JSON: %s", stdout)
	}
	stdout, _, _ = runCLI(t, "", env, "trust", "--store", "none")
	if !strings.Contains(stdout, "(existing)") || !strings.Contains(stdout, "signs only: localhost, *.localhost, example.gh, *.example.gh, 127.0.0.0/8, ::1") {
		t.Fatalf("second run:\n%s", stdout)
	}
	stdout, stderr, code = runCLI(t, "", env, "untrust", "--store", "none", "--delete")
	if code != 0 || !strings.Contains(stdout, "deleted "+caroot) {
		t.Fatalf("untrust --delete: %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(caroot); err == nil {
		t.Fatal("CAROOT still there")
	}
}

// httpsTestServer serves a small page over HTTPS on 127.0.0.1 with the CA
// in caroot, for the names in allowed; it returns the port.
func httpsTestServer(t *testing.T, caroot string, allowed ...string) string {
	t.Helper()
	ca, err := tlsca.Load(caroot)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := tlsca.NewIssuer(ca, tlsca.IssuerOptions{Allowed: func(n string) bool {
		for _, a := range allowed {
			if n == a {
				return true
			}
		}
		return false
	}})
	if err != nil {
		t.Fatal(err)
	}
	return serveTestPage(t, iss.TLSConfig())
}

// serveTestPage serves the HTTPS test page with cfg on 127.0.0.1 until the
// test ends; it returns the port.
func serveTestPage(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(testPage), TLSConfig: cfg, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// testPage is what the trust tests load: it says which name, protocol
// and TLS version served it. (The engine itself over HTTPS is tested in
// https_test.go.)
func testPage(w http.ResponseWriter, r *http.Request) {
	version := map[uint16]string{tls.VersionTLS12: "TLS 1.2", tls.VersionTLS13: "TLS 1.3"}[r.TLS.Version]
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html><head><title>siteplex HTTPS test page</title>
<style>body{font:18px system-ui,sans-serif;margin:3em;color:#1b1f24}h1{font-size:28px}code{background:#eef;padding:2px 6px;border-radius:4px}</style></head>
<body><h1>siteplex HTTPS test page</h1>
<p id="marker">served-over-https host=%s proto=%s</p>
<ul><li>Host: <code>%s</code></li><li>Protocol: <code>%s</code></li><li>TLS: <code>%s</code>, ALPN <code>%s</code></li>
<li>Certificate: issued at the handshake by the siteplex local CA for exactly this name, valid 30 days</li></ul>
<p>This page is a test fixture of siteplex's trust tests.</p>
</body></html>
`, r.Host, r.Proto, r.Host, r.Proto, version, r.TLS.NegotiatedProtocol)
}

// treeListing describes every entry under dir: path, type, mode, symlink
// target and the SHA-256 of regular files.
func treeListing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Dir(dir), p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v %d:%d", rel, info.Mode(), st.Uid, st.Gid)
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			fmt.Fprintf(&b, " %s", hex.EncodeToString(sum[:]))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// copyTree copies src into a new temp folder with cp -a (symlinks,
// modes, owners kept) and returns it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s: %v\n%s", src, err, out)
	}
	return dst
}

// runAsNobody runs siteplex as uid 65534 with env and returns its output
// and exit status.
func runAsNobody(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := testenv.AsNobody(context.Background(), t, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestTrustSystemStore is the whole system-store round trip with the real
// update-ca-certificates, inside a private mount namespace whose
// /usr/local/share/ca-certificates and /etc/ssl/certs are copies (and whose
// update hooks folder is empty), so the machine's own store is never
// touched:
//   - as uid 65534, `trust --store system` creates the CA, prints the exact
//     sudo command and exits 1;
//   - that command, run as root the way sudo would (SUDO_UID), installs the
//     CA: curl without --cacert then reaches an HTTPS server over HTTP/2;
//   - as uid 65534, `untrust --delete` prints its sudo command; run, it
//     removes the CA and its files, and both folders are byte for byte as
//     they were.
func TestTrustSystemStore(t *testing.T) {
	ns := newStoreNamespace(t)
	bin := buildSiteplex(t)

	base := worldReadableDir(t)
	caroot, nobodyHome := filepath.Join(base, "ca"), filepath.Join(base, "home")
	os.Mkdir(nobodyHome, 0o755)
	os.Chown(nobodyHome, 65534, 65534)
	os.Chmod(base, 0o777)
	nobodyEnv := []string{"HOME=" + nobodyHome, "SITEPLEX_CAROOT=" + caroot, "XDG_DATA_HOME="}

	// 1. As a user: the CA is made, the system store needs root.
	_, stderr, code := runAsNobody(t, bin, nobodyEnv, "trust", "--store", "system")
	wantTrust := "sudo " + bin + " trust --store system --caroot " + caroot
	if code != 1 || !strings.Contains(stderr, "the system trust store needs root; run:\n  "+wantTrust+"\n") {
		t.Fatalf("trust as uid 65534: exit %d, want 1 and the exact command %q:\n%s", code, wantTrust, stderr)
	}
	for _, f := range []string{caroot, filepath.Join(caroot, tlsca.KeyFile), filepath.Join(caroot, tlsca.CertFile)} {
		st, err := os.Stat(f)
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != 65534 {
			t.Fatalf("%s: %v, want it owned by the user who ran trust", f, err)
		}
	}
	port := httpsTestServer(t, caroot, "gh.localhost")
	url := "https://gh.localhost:" + port + "/"
	resolve := "gh.localhost:" + port + ":127.0.0.1"

	out := t.TempDir()
	script := `set -u
step() { name=$1; shift; "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; echo $? >"$OUT/$name.rc"; }
asroot() { eval "env SUDO_UID=65534 SUDO_GID=65534 SUDO_USER=nobody HOME=/root $1"; }
` + ns.mounts + `
step curl_before curl -sS --resolve "$RESOLVE" "$URL"
step trust asroot "${TRUST_CMD#sudo }"
step status sh -c 'ls /usr/local/share/ca-certificates; grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt'
step curl_trusted curl -sS --http2 -w '\nhttp_version=%{http_version}\n' --resolve "$RESOLVE" "$URL"
step doctor setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$NOBODY_HOME" SITEPLEX_CAROOT="$CAROOT" XDG_DATA_HOME= "$BIN" doctor --json --project "$NOBODY_HOME"
step trust_again asroot "${TRUST_CMD#sudo }"
step untrust_user setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$NOBODY_HOME" SITEPLEX_CAROOT="$CAROOT" XDG_DATA_HOME= "$BIN" untrust --delete
UNTRUST_CMD=$(sed -n 's/^  sudo //p' "$OUT/untrust_user.err")
step untrust asroot "$UNTRUST_CMD"
step curl_after curl -sS --resolve "$RESOLVE" "$URL"
exit 0`
	cmd := exec.Command("unshare", "-m", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "OUT="+out, "RESOLVE="+resolve, "URL="+url, "TRUST_CMD="+wantTrust, "BIN="+bin,
		"NOBODY_HOME="+nobodyHome, "CAROOT="+caroot)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("namespace script: %v\n%s", err, o)
	}
	step := func(name string) (string, string, string) {
		o, _ := os.ReadFile(filepath.Join(out, name+".out"))
		e, _ := os.ReadFile(filepath.Join(out, name+".err"))
		rc, _ := os.ReadFile(filepath.Join(out, name+".rc"))
		return string(o), string(e), strings.TrimSpace(string(rc))
	}
	if o, e, rc := step("curl_before"); rc == "0" || !strings.Contains(e, "certificate") {
		t.Fatalf("curl trusted the CA before `trust` (exit %s):\n%s%s", rc, o, e)
	}
	name := truststore.NameFor(caroot, tlsca.User{Name: "nobody"})
	if o, e, rc := step("trust"); rc != "0" || !strings.Contains(o, "system  installed    /usr/local/share/ca-certificates/"+name+".crt") {
		t.Fatalf("%s: exit %s\n%s%s", wantTrust, rc, o, e)
	}
	if o, e, rc := step("curl_trusted"); rc != "0" || !strings.Contains(o, "served-over-https host=gh.localhost:"+port+" proto=HTTP/2.0") || !strings.Contains(o, "http_version=2") {
		s, _, _ := step("status")
		t.Fatalf("curl without --cacert after trust: exit %s\n%s%s\nstore: %s", rc, o, e, s)
	}
	if o, e, _ := step("doctor"); !strings.Contains(o, `"name": "https_trust",
      "status": "ok",
      "detail": "system: trusted`) {
		t.Fatalf("doctor after trust does not see the system store trust it:\n%s%s", o, e)
	}
	if o, _, rc := step("trust_again"); rc != "0" || !strings.Contains(o, "system  already") {
		t.Fatalf("second trust: exit %s\n%s", rc, o)
	}
	wantUntrust := "sudo " + bin + " untrust --store system --caroot " + caroot + " --delete"
	if o, e, rc := step("untrust_user"); rc != "1" || !strings.Contains(e, "\n  "+wantUntrust+"\n") || !strings.Contains(o, "local CA: "+caroot+" (kept)") {
		t.Fatalf("untrust --delete as uid 65534: exit %s, want 1 and %q\n%s%s", rc, wantUntrust, o, e)
	}
	if o, e, rc := step("untrust"); rc != "0" || !strings.Contains(o, "system  removed") || !strings.Contains(o, "local CA: deleted") {
		t.Fatalf("%s: exit %s\n%s%s", wantUntrust, rc, o, e)
	}
	if o, e, rc := step("curl_after"); rc == "0" {
		t.Fatalf("curl still trusts the CA after untrust:\n%s%s", o, e)
	}
	if _, err := os.Stat(caroot); err == nil {
		t.Fatal("untrust --delete left the CA folder")
	}
	ns.verifyRestored()
}

// storeNamespace is a private mount namespace's view of the Debian trust
// store: copies of /usr/local/share/ca-certificates and /etc/ssl/certs,
// and an empty update hooks folder (the Java keystore hook would touch
// /var/lib outside the copies).
type storeNamespace struct {
	t *testing.T
	// mounts is the shell code, run first inside `unshare -m`, that
	// mounts the copies over the real folders.
	mounts                   string
	copies, reals            []string
	copiesBefore, realBefore string
}

func newStoreNamespace(t *testing.T) *storeNamespace {
	t.Helper()
	for _, tool := range []string{"unshare", "mount", "curl", "update-ca-certificates", "cp", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s (util-linux, mount, curl, ca-certificates): %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, for a private mount namespace")
	}
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		testenv.Missing(t, "unshare -m is not permitted here (%v)", err)
	}
	ns := &storeNamespace{t: t, reals: []string{"/usr/local/share/ca-certificates", "/etc/ssl/certs"}}
	var b strings.Builder
	for i, d := range ns.reals {
		if _, err := os.Stat(d); err != nil {
			testenv.Missing(t, "the Debian trust store folder %s: %v", d, err)
		}
		ns.copies = append(ns.copies, copyTree(t, d))
		fmt.Fprintf(&b, "mount --bind %s %s || exit %d\n", ns.copies[i], d, 90+i)
	}
	if hooks := "/etc/ca-certificates/update.d"; dirExists(hooks) {
		fmt.Fprintf(&b, "mount --bind %s %s || exit 92\n", t.TempDir(), hooks)
	}
	ns.mounts = b.String()
	ns.realBefore, ns.copiesBefore = ns.listing(ns.reals), ns.listing(ns.copies)
	return ns
}

func dirExists(d string) bool { st, err := os.Stat(d); return err == nil && st.IsDir() }

func (ns *storeNamespace) listing(dirs []string) string {
	var b strings.Builder
	for _, d := range dirs {
		b.WriteString(treeListing(ns.t, d))
	}
	return b.String()
}

// verifyRestored fails the test unless the copies are byte for byte as
// they were, and the machine's own folders were never changed.
func (ns *storeNamespace) verifyRestored() {
	ns.t.Helper()
	if after := ns.listing(ns.copies); after != ns.copiesBefore {
		ns.t.Fatalf("trust + untrust did not restore the store byte for byte:\n%s", listingDiff(ns.copiesBefore, after))
	}
	if after := ns.listing(ns.reals); after != ns.realBefore {
		ns.t.Fatalf("the machine's own trust store changed:\n%s", listingDiff(ns.realBefore, after))
	}
}

// TestTrustSudoInTmux is the interactive hand-off: in a terminal, as uid
// 65534, `trust --store system` runs `sudo siteplex trust …` itself (a
// real sudo, allowed by a sudoers file bind-mounted over /etc/sudoers in
// the private namespace), then `untrust --delete` does the same; the store
// copies come back byte for byte.
func TestTrustSudoInTmux(t *testing.T) {
	for _, tool := range []string{"tmux", "sudo"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s is not installed: the sudo hand-off test needs it", tool)
		}
	}
	ns := newStoreNamespace(t)
	bin := buildSiteplex(t)
	base := worldReadableDir(t)
	os.Chmod(base, 0o777)
	caroot, home := filepath.Join(base, "ca"), filepath.Join(base, "home")
	os.Mkdir(home, 0o777)
	private := t.TempDir()
	sudoers := filepath.Join(private, "sudoers")
	rules := "Defaults env_reset\nDefaults !lecture\nroot ALL=(ALL:ALL) ALL\nnobody ALL=(root) NOPASSWD: " + bin + "\n"
	if err := os.WriteFile(sudoers, []byte(rules), 0o440); err != nil {
		t.Fatal(err)
	}
	// The CA first (as the user), so the test server can use it.
	if _, _, code := runAsNobody(t, bin, []string{"HOME=" + home, "SITEPLEX_CAROOT=" + caroot}, "trust", "--store", "none"); code != 0 {
		t.Fatal("trust --store none as uid 65534 failed")
	}
	port := httpsTestServer(t, caroot, "gh.localhost")
	asUser := fmt.Sprintf("setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=%s SITEPLEX_CAROOT=%s XDG_DATA_HOME=", home, caroot)
	script := filepath.Join(private, "run.sh")
	exitFile := filepath.Join(private, "exit")
	body := ns.mounts + fmt.Sprintf(`mount --bind %s /etc/sudoers || exit 93
%[2]s %[3]s trust --store system; echo $? > %[4]s/trust.rc
%[2]s curl -sS --resolve gh.localhost:%[5]s:127.0.0.1 https://gh.localhost:%[5]s/ > %[4]s/curl.out 2>&1; echo $? > %[4]s/curl.rc
%[2]s %[3]s untrust --delete --store system; echo $? > %[4]s/untrust.rc
`, sudoers, asUser, bin, private, port)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("siteplex-trust-test-%d", os.Getpid())}
	if out, err := s.tmux("-f", "/dev/null", "new-session", "-d", "-s", "demo", "-x", "200", "-y", "50",
		"sh", "-c", fmt.Sprintf("unshare -m sh %s; echo $? > %s; sleep 600", script, exitFile)); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = s.tmux("kill-server") })
	s.waitExit("the trust script", exitFile)
	screen := s.screen()
	rc := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(private, name+".rc"))
		return strings.TrimSpace(string(b))
	}
	for _, want := range []string{
		"siteplex: the system trust store needs root; running: sudo " + bin + " trust --store system --caroot " + caroot,
		"system  installed    /usr/local/share/ca-certificates/siteplex-nobody-",
		"(through sudo; in /etc/ssl/certs/ca-certificates.crt)",
		"system  removed      /usr/local/share/ca-certificates/siteplex-nobody-",
		"running: sudo " + bin + " untrust --store system --caroot " + caroot + " --delete",
		"local CA: deleted " + caroot,
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the terminal lacks %q:\n%s", want, screen)
		}
	}
	if n := strings.Count(screen, "local CA: "); n != 2 {
		t.Errorf("%d reports on the terminal, want one per command:\n%s", n, screen)
	}
	if rc("trust") != "0" || rc("untrust") != "0" {
		t.Fatalf("exit statuses: trust %s, untrust %s; screen:\n%s", rc("trust"), rc("untrust"), screen)
	}
	if b, _ := os.ReadFile(filepath.Join(private, "curl.out")); rc("curl") != "0" || !strings.Contains(string(b), "served-over-https host=gh.localhost") {
		t.Fatalf("curl without --cacert between trust and untrust: exit %s\n%s", rc("curl"), b)
	}
	if _, err := os.Stat(caroot); err == nil {
		t.Fatal("untrust --delete through sudo left the CA")
	}
	ns.verifyRestored()
}

func listingDiff(a, b string) string {
	in := map[string]bool{}
	for _, l := range strings.Split(a, "\n") {
		in[l] = true
	}
	var out []string
	for _, l := range strings.Split(b, "\n") {
		if !in[l] {
			out = append(out, "+ "+l)
		}
		delete(in, l)
	}
	for l := range in {
		out = append(out, "- "+l)
	}
	return strings.Join(out, "\n")
}

// TestTrustNobodyNeedsSudo: as uid 65534 with no terminal, trust --store
// system gives the exact sudo command and exit 1, also as JSON.
func TestTrustNobodyNeedsSudo(t *testing.T) {
	if _, err := truststore.DetectSystem(); err != nil {
		testenv.Missing(t, "a system trust store: %v", err)
	}
	bin := buildSiteplex(t)
	base := worldReadableDir(t)
	os.Chmod(base, 0o777)
	caroot := filepath.Join(base, "my ca")
	env := []string{"HOME=" + base, "SITEPLEX_CAROOT=" + caroot}
	stdout, stderr, code := runAsNobody(t, bin, env, "trust", "--store", "system", "--json")
	want := "sudo " + bin + " trust --store system --caroot '" + caroot + "'"
	if code != 1 || !strings.Contains(stderr, "run:\n  "+want+"\n") {
		t.Fatalf("exit %d, want 1 and %q:\n%s", code, want, stderr)
	}
	var rep trustReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(rep.Stores) != 1 || rep.Stores[0].Status != truststore.NeedsRoot || rep.Stores[0].Command != want {
		t.Fatalf("JSON stores: %+v", rep.Stores)
	}
}

// chromium is Debian's Chromium, or a loud skip.
func chromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "chromium (Debian package chromium): %v", err)
	}
	return p
}

// runChromium loads url in headless Chromium with HOME=home and a fresh
// profile, and returns what --dump-dom printed and, when the page did not
// load, Chromium's reason ("net::ERR_CERT_AUTHORITY_INVALID"). With
// screenshot set it writes a PNG there instead. extra are more flags.
func runChromium(t *testing.T, home, url, screenshot string, extra ...string) (dom, failure string) {
	t.Helper()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	args = append(args, extra...)
	if screenshot != "" {
		args = append(args, "--screenshot="+screenshot, "--window-size=1000,360", "--hide-scrollbars")
	} else {
		args = append(args, "--dump-dom")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium(t), append(args, url)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil && ctx.Err() != nil {
		t.Fatalf("chromium timed out\n%s", stderr.String())
	}
	if _, after, ok := strings.Cut(stderr.String(), "Page load failed: "); ok {
		failure, _, _ = strings.Cut(after, "\n")
	}
	return stdout.String(), failure
}

// TestTrustNSSChromium: `trust --store nss` into a temp HOME makes headless
// Chromium load https://gh.localhost:PORT/ over HTTP/2 with no certificate
// error; a HOME without trust gets ERR_CERT_AUTHORITY_INVALID; and a
// certificate signed with the CA's key outside its name constraints is
// rejected by Chromium even with the CA trusted.
func TestTrustNSSChromium(t *testing.T) {
	chromium(t)
	if _, err := truststore.NewCertutil(nil); err != nil {
		testenv.Missing(t, "%v", err)
	}
	home := t.TempDir()
	caroot := filepath.Join(t.TempDir(), "ca")
	env := map[string]string{"HOME": home, "SITEPLEX_CAROOT": caroot}
	stdout, stderr, code := runCLI(t, "", env, "trust", "--store", "nss")
	if code != 0 || !strings.Contains(stdout, "nss     installed    "+filepath.Join(home, ".pki", "nssdb")+" (Chromium/Chrome; created the database)") {
		t.Fatalf("trust --store nss: exit %d\n%s%s", code, stdout, stderr)
	}
	port := httpsTestServer(t, caroot, "gh.localhost")
	url := "https://gh.localhost:" + port + "/"
	marker := "served-over-https host=gh.localhost:" + port + " proto=HTTP/2.0"

	if dom, failure := runChromium(t, home, url, ""); !strings.Contains(dom, marker) {
		t.Fatalf("Chromium with the CA trusted did not show the page over HTTP/2 (%s):\n%s", failure, dom)
	}
	// Negative control: the same page, a HOME that does not trust the CA.
	if dom, failure := runChromium(t, t.TempDir(), url, ""); strings.Contains(dom, "served-over-https") || failure != "net::ERR_CERT_AUTHORITY_INVALID" {
		t.Fatalf("Chromium without the CA: failure %q, want net::ERR_CERT_AUTHORITY_INVALID\n%s", failure, dom)
	}
	// The name constraints hold in Chromium: a leaf for a public name
	// signed with the CA's own key is rejected in the trusting HOME, while
	// the same kind of leaf for a .localhost name loads.
	resolve := "--host-resolver-rules=MAP attacker.example 127.0.0.1"
	for _, tt := range []struct {
		name string
		ok   bool
	}{{"attacker.example", false}, {"gh.localhost", true}} {
		rport := serveTestPage(t, &tls.Config{Certificates: []tls.Certificate{signWithCAKey(t, caroot, tt.name)}})
		dom, failure := runChromium(t, home, "https://"+tt.name+":"+rport+"/", "", resolve)
		if loaded := strings.Contains(dom, "served-over-https host="+tt.name); loaded != tt.ok || !tt.ok && !strings.HasPrefix(failure, "net::ERR_CERT_") {
			t.Fatalf("leaf for %s signed with the CA key: loaded %v (failure %q), want %v", tt.name, loaded, failure, tt.ok)
		}
	}
	// untrust takes it out of the database again.
	stdout, _, code = runCLI(t, "", env, "untrust", "--store", "nss")
	if code != 0 || !strings.Contains(stdout, "nss     removed") {
		t.Fatalf("untrust: %d\n%s", code, stdout)
	}
	if _, failure := runChromium(t, home, url, ""); failure != "net::ERR_CERT_AUTHORITY_INVALID" {
		t.Fatalf("Chromium after untrust: failure %q, want net::ERR_CERT_AUTHORITY_INVALID", failure)
	}
}

// signWithCAKey signs a leaf for name with the CA's key from its files,
// bypassing tlsca and its checks: what someone holding the key could do.
func signWithCAKey(t *testing.T, caroot, name string) tls.Certificate {
	t.Helper()
	caPair, err := tls.LoadX509KeyPair(filepath.Join(caroot, tlsca.CertFile), filepath.Join(caroot, tlsca.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{Organization: []string{"siteplex development certificate"}},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caPair.Leaf, key.Public(), caPair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
