package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/hosts"
	"github.com/siteplex/siteplex/internal/testenv"
)

// hostsProject makes a project with the given [sites.<slug>] domains in its
// siteplex.toml (no database) and a hosts file holding hostsData, and points
// backups at a temporary state folder. It returns the project root and the
// hosts file.
func hostsProject(t *testing.T, hostsData string, domains map[string]string) (root, hostsFile string) {
	t.Helper()
	dir := t.TempDir()
	// Traversable by every user: some tests run siteplex as uid 65534.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root = filepath.Join(dir, "proj")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var toml strings.Builder
	toml.WriteString("name = \"acme\"\n")
	slugs := make([]string, 0, len(domains))
	for s := range domains {
		slugs = append(slugs, s)
	}
	slices.Sort(slugs)
	for i, s := range slugs {
		d, _ := json.Marshal(domains[s]) // a TOML basic string is JSON-compatible
		fmt.Fprintf(&toml, "[sites.%s]\nid = %d\ndomain = %s\n", s, i+1, d)
	}
	if err := os.WriteFile(filepath.Join(root, "siteplex.toml"), []byte(toml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	hostsFile = filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, []byte(hostsData), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	t.Setenv("SITEPLEX_HOSTS_FILE", "")
	return root, hostsFile
}

// runHosts runs the CLI in process and returns exit code, stdout, stderr.
func runHosts(t testing.TB, args ...string) (int, string, string) {
	if t != nil {
		t.Helper()
	}
	var out, errb bytes.Buffer
	f := newFactory(&IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb})
	code := execute(context.Background(), f, args)
	return code, out.String(), errb.String()
}

func TestHostsFlagParsing(t *testing.T) {
	root, hf := hostsProject(t, "127.0.0.1 localhost\n", map[string]string{"gh": "example.gh"})
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"bad --names", []string{"hosts", "apply", "--names", "bogus"}, 2, `--names "bogus": use domain, local, aliases or all`},
		{"bad --names on remove", []string{"hosts", "remove", "--names", "x"}, 2, "use domain, local, aliases or all"},
		{"bad --names on status", []string{"hosts", "status", "--names", "x"}, 2, "use domain, local, aliases or all"},
		{"unknown flag", []string{"hosts", "apply", "--nope"}, 2, "unknown flag"},
		{"unknown site", []string{"hosts", "apply", "nosuchsite"}, 2, `unknown site "nosuchsite"`},
		{"unknown site on remove", []string{"hosts", "remove", "nosuchsite"}, 2, `unknown site "nosuchsite"`},
		{"unknown subcommand", []string{"hosts", "frobnicate"}, 2, "unknown command"},
		{"--json is status only", []string{"hosts", "apply", "--json"}, 2, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runHosts(t, append(tt.args, "--project", root, "--hosts-file", hf)...)
			if code != tt.code || !strings.Contains(stderr, tt.err) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.err)
			}
			if got, _ := os.ReadFile(hf); string(got) != "127.0.0.1 localhost\n" {
				t.Fatal("hosts file changed")
			}
		})
	}
}

func TestHostsApplyRemoveCLI(t *testing.T) {
	orig := "\xEF\xBB\xBF127.0.0.1 localhost\r\n\t::1\tlocalhost # tabs\r\n192.168.1.9 example.gh # the user's own\r\n# profile.on dev\r\n127.0.0.1 api.dev.test\r\n# end\r\n10.0.0.1 nas" // no final newline
	root, hf := hostsProject(t, orig, map[string]string{"gh": "example.gh", "de": "example.de:8000", "us": "example.us"})
	run := func(args ...string) (int, string, string) {
		return runHosts(t, append(append([]string{"hosts"}, args...), "--project", root, "--hosts-file", hf)...)
	}
	read := func() string { b, _ := os.ReadFile(hf); return string(b) }

	// --dry-run prints a diff and writes nothing.
	code, out, _ := run("apply", "--dry-run")
	key := hosts.KeyFor("acme", root)
	if code != 0 || !strings.Contains(out, "+"+hosts.BeginMarker(key)+"\r\n") || !strings.HasPrefix(out, "--- a"+hf) || read() != orig {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	// apply SITE touches only that site.
	if code, out, errs := run("apply", "gh"); code != 0 || !strings.Contains(out, "added 1 (example.gh)") {
		t.Fatalf("apply gh: %d %q %q", code, out, errs)
	}
	if code, _, _ := run("apply", "de", "--names", "local"); code != 0 {
		t.Fatal("apply de --names local")
	}
	want := orig + "\r\n" + hosts.BeginMarker(key) + "\r\n127.0.0.1 example.gh\r\n::1 example.gh\r\n127.0.0.1 example.de\r\n::1 example.de\r\n127.0.0.1 de.localhost\r\n::1 de.localhost\r\n" + hosts.EndMarker(key)
	if got := read(); got != want {
		t.Fatalf("after apply:\n%q\nwant\n%q", got, want)
	}
	// Idempotent: same inode, same mtime, nothing written.
	st1, _ := os.Stat(hf)
	time.Sleep(20 * time.Millisecond)
	if code, out, _ := run("apply", "gh"); code != 0 || !strings.Contains(out, "nothing written") {
		t.Fatalf("second apply: %d %q", code, out)
	}
	st2, _ := os.Stat(hf)
	if !os.SameFile(st1, st2) || !st1.ModTime().Equal(st2.ModTime()) {
		t.Fatal("second apply touched the file")
	}
	// status: per site, names in the block and the user's own line.
	code, out, _ = run("status", "--json")
	var st hostsStatus
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: %d %v\n%s", code, err, out)
	}
	byslug := map[string]hostsSiteStatus{}
	for _, s := range st.Sites {
		byslug[s.Slug] = s
	}
	if gh := byslug["gh"]; !gh.Applied || gh.Names[0].Name != "example.gh" || !gh.Names[0].InBlock || !slices.Equal(gh.Names[0].Elsewhere, []int{3}) {
		t.Fatalf("status gh = %+v", gh)
	}
	if us := byslug["us"]; us.Applied || us.Names[0].InBlock {
		t.Fatalf("status us = %+v", us)
	}
	if st.System || !st.Block || st.Line != 8 || st.HostsFile != hf {
		t.Fatalf("status = %+v", st)
	}
	if code, out, _ := run("status"); code != 0 || !strings.Contains(out, "line 3") {
		t.Fatalf("status table: %d\n%s", code, out)
	}
	// remove SITE takes every name of that site out.
	if code, _, _ := run("remove", "de"); code != 0 {
		t.Fatal("remove de")
	}
	if got := read(); strings.Contains(got, "example.de") || strings.Contains(got, "de.localhost") || !strings.Contains(got, "::1 example.gh") {
		t.Fatalf("after remove de: %q", got)
	}
	// A name no site has any more can be removed by name.
	if code, _, _ := run("remove", "example.gh"); code != 0 {
		t.Fatal("remove example.gh")
	}
	if got := read(); got != orig {
		t.Fatalf("emptied block did not disappear / round trip not byte-identical:\n%q\nwant\n%q", got, orig)
	}
	// apply (all) then remove (block) is byte-identical too.
	if code, _, _ := run("apply", "--names", "all"); code != 0 {
		t.Fatal("apply all")
	}
	if code, _, _ := run("remove"); code != 0 {
		t.Fatal("remove")
	}
	if got := read(); got != orig {
		t.Fatalf("apply→remove not byte-identical:\n%q\nwant\n%q", got, orig)
	}
	// Backups: the pristine copy is the original file.
	if b, err := os.ReadFile(filepath.Join(hosts.BackupFolder("", hf), "pristine")); err != nil || string(b) != orig {
		t.Fatalf("pristine copy: %v", err)
	}
	if l, _ := hosts.Backups("", hf); len(l) != hosts.DefaultKeep {
		t.Fatalf("%d rotating backups, want %d", len(l), hosts.DefaultKeep)
	}
}

func TestHostsValidation(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	domains := map[string]string{
		"newline":   "evil.test\n127.0.0.1 bank.com",
		"hash":      "evil.test#x",
		"space":     "evil test.example",
		"control":   "evil\x01.test",
		"lead":      "-evil.test",
		"trail":     "evil-.test",
		"label64":   strings.Repeat("a", 64) + ".test",
		"long254":   strings.Repeat(label63+".", 3) + strings.Repeat("b", 59) + ".cd",
		"port":      "example.gh:8000",
		"unicode":   "bücher.example",
		"ok253":     strings.Repeat(label63+".", 3) + strings.Repeat("b", 58) + ".cd",
		"plainsite": "plain.example",
	}
	root, hf := hostsProject(t, "127.0.0.1 localhost\n", domains)
	code, _, stderr := runHosts(t, "hosts", "apply", "--project", root, "--hosts-file", hf)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (stderr %q)", code, stderr)
	}
	got, _ := os.ReadFile(hf)
	doc, err := hosts.Parse(got, hosts.KeyFor("acme", root))
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"example.gh", "plain.example", "xn--bcher-kva.example", domains["ok253"]}
	if n := doc.Names(); !slices.Equal(slices.Sorted(slices.Values(n)), slices.Sorted(slices.Values(wantNames))) {
		t.Fatalf("names written = %q, want %q", n, wantNames)
	}
	for slug, d := range domains {
		bad := !slices.Contains([]string{"port", "unicode", "ok253", "plainsite"}, slug)
		if bad && !strings.Contains(stderr, "("+slug+") not written") {
			t.Errorf("stderr does not name site %s:\n%s", slug, stderr)
		}
		if bad && bytes.Contains(got, []byte(strings.SplitN(d, "\n", 2)[0]+"\n")) && slug != "newline" {
			t.Errorf("invalid %q written", d)
		}
	}
	if bytes.Contains(got, []byte("bank.com")) || bytes.Count(got, []byte("\n")) != 1+2+2*len(wantNames) {
		t.Fatalf("file has foreign lines:\n%s", got)
	}
	// Only the refused sites named: still exit 1, nothing written.
	before, _ := os.ReadFile(hf)
	if code, _, stderr := runHosts(t, "hosts", "apply", "newline", "--project", root, "--hosts-file", hf); code != 1 || !strings.Contains(stderr, "site ") {
		t.Fatalf("apply newline: exit %d %q", code, stderr)
	}
	if after, _ := os.ReadFile(hf); !bytes.Equal(before, after) {
		t.Fatal("file changed")
	}
}

// hostsBuiltBinary builds the real binary once for the tests that run it as
// separate processes.
var hostsBuiltBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "siteplex-hosts-test-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "siteplex")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func hostsBinary(t *testing.T) string {
	t.Helper()
	bin, err := hostsBuiltBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestHostsConcurrentProcesses(t *testing.T) {
	bin := hostsBinary(t)
	orig := "# my hosts\r\n127.0.0.1 localhost\r\n# siteplex begin other\r\n127.0.0.1 other.test\r\n# siteplex end other\r\n10.0.0.1 nas"
	domains := map[string]string{}
	var all []string
	for i := range 20 {
		domains[fmt.Sprintf("s%02d", i)] = fmt.Sprintf("site%02d.test", i)
		all = append(all, fmt.Sprintf("site%02d.test", i))
	}
	root, hf := hostsProject(t, orig, domains)
	wave := func(args func(i int) []string) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]string, 20)
		for i := range 20 {
			wg.Go(func() {
				cmd := exec.Command(bin, append(args(i), "--project", root, "--hosts-file", hf)...)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs[i] = fmt.Sprintf("process %d: %v\n%s", i, err, out)
				}
			})
		}
		wg.Wait()
		for _, e := range errs {
			if e != "" {
				t.Fatal(e)
			}
		}
	}
	check := func(want []string) {
		t.Helper()
		data, _ := os.ReadFile(hf)
		if n := bytes.Count(data, []byte("# siteplex begin acme")); n > 1 {
			t.Fatalf("%d blocks", n)
		}
		doc, err := hosts.Parse(data, hosts.KeyFor("acme", root))
		if err != nil {
			t.Fatalf("file is not well-formed: %v", err)
		}
		if string(doc.Outside()) != orig {
			t.Fatalf("bytes outside the block changed:\n%q", doc.Outside())
		}
		if want != nil && !slices.Equal(slices.Sorted(slices.Values(doc.Names())), want) {
			t.Fatalf("names = %q, want %q (a lost update)", doc.Names(), want)
		}
	}
	// 20 processes each add their own site: none may be lost.
	wave(func(i int) []string { return []string{"hosts", "apply", fmt.Sprintf("s%02d", i)} })
	check(all)
	// 20 processes mixing apply and remove.
	wave(func(i int) []string {
		switch i % 3 {
		case 0:
			return []string{"hosts", "remove", fmt.Sprintf("s%02d", i)}
		case 1:
			return []string{"hosts", "apply"}
		}
		return []string{"hosts", "remove"}
	})
	check(nil)
	// 20 processes each remove their own site: the block disappears.
	wave(func(i int) []string { return []string{"hosts", "apply", fmt.Sprintf("s%02d", i)} })
	wave(func(i int) []string { return []string{"hosts", "remove", fmt.Sprintf("s%02d", i)} })
	if data, _ := os.ReadFile(hf); string(data) != orig {
		t.Fatalf("after removing every site:\n%q", data)
	}
}

func TestHostsCrashSafety(t *testing.T) {
	bin := hostsBinary(t)
	// A large file, so that writes take long enough to be interrupted.
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	for i := 0; b.Len() < 16<<20; i++ {
		fmt.Fprintf(&b, "0.0.0.0 ads%d.tracker.example.com\n", i)
	}
	orig := b.String()
	domains := map[string]string{}
	for i := range 50 {
		domains[fmt.Sprintf("s%02d", i)] = fmt.Sprintf("site%02d.test", i)
	}
	root, hf := hostsProject(t, orig, domains)
	// The only two valid contents: without and with the block.
	if out, err := exec.Command(bin, "hosts", "apply", "--project", root, "--hosts-file", hf).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	withBlock, _ := os.ReadFile(hf)
	// How long one writer runs (the first run also saved the pristine copy).
	start := time.Now()
	if out, err := exec.Command(bin, "hosts", "remove", "--project", root, "--hosts-file", hf).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	span := time.Since(start)
	killed, finished := 0, 0
	for i := range 30 {
		op := []string{"hosts", "remove"}
		if i%2 == 1 {
			op = []string{"hosts", "apply"}
		}
		cmd := exec.Command(bin, append(op, "--project", root, "--hosts-file", hf)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(span))))
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
		} else {
			finished++
		}
		data, err := os.ReadFile(hf)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != orig && !bytes.Equal(data, withBlock) {
			t.Fatalf("after SIGKILL %d the file is neither the old nor the new content (%d bytes)", i, len(data))
		}
	}
	t.Logf("%d writers killed at random moments, %d finished first (a full write takes %v)", killed, finished, span)
	if killed == 0 {
		t.Fatal("no writer was killed")
	}
	// The next writer cleans up temporary files of killed ones.
	if out, err := exec.Command(bin, "hosts", "remove", "--project", root, "--hosts-file", hf).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(hf), ".hosts.siteplex-*")); len(m) > 0 {
		t.Fatalf("temporary files left: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(hosts.BackupFolder("", hf), "*.tmp")); len(m) > 0 {
		t.Fatalf("temporary backup files left: %v", m)
	}
	if data, _ := os.ReadFile(hf); string(data) != orig {
		t.Fatal("final remove did not give back the original")
	}
	if b, _ := os.ReadFile(filepath.Join(hosts.BackupFolder("", hf), "pristine")); string(b) != orig {
		t.Fatal("pristine copy is not the original")
	}
}

func TestHostsBindMountedEtcHosts(t *testing.T) {
	bin := hostsBinary(t)
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		testenv.Missing(t, "unshare -m is not permitted here (%v): cannot bind-mount a file over /etc/hosts in a private namespace", err)
	}
	sys, _ := os.ReadFile("/etc/hosts")
	root, hf := hostsProject(t, string(sys)+"# user line\n", map[string]string{"gh": "example.gh"})
	if err := os.Chmod(hf, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(hf, 0, 4); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(hf)
	before, _ := os.Stat(hf)
	state := os.Getenv("XDG_STATE_HOME")
	script := `set -u
mount --bind "$HF" /etc/hosts
"$BIN" --project "$ROOT" hosts apply gh || exit 10
getent hosts example.gh || exit 11
"$BIN" --project "$ROOT" hosts status --json > "$STATUS" || exit 12
"$BIN" --project "$ROOT" hosts remove gh || exit 13
if getent hosts example.gh; then exit 14; fi
exit 0`
	cmd := exec.Command("unshare", "-m", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "HF="+hf, "BIN="+bin, "ROOT="+root, "STATUS="+filepath.Join(state, "status.json"),
		"SITEPLEX_HOSTS_FILE=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("namespace script: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if !strings.Contains(string(out), "rewritten in place") {
		t.Fatalf("apply did not rewrite in place:\n%s", out)
	}
	if !strings.Contains(string(out), "127.0.0.1") && !strings.Contains(string(out), "::1") {
		t.Fatalf("getent did not answer loopback:\n%s", out)
	}
	var st hostsStatus
	js, _ := os.ReadFile(filepath.Join(state, "status.json"))
	if err := json.Unmarshal(js, &st); err != nil {
		t.Fatal(err)
	}
	if n := st.Sites[0].Names[0]; !st.System || !n.InBlock || n.Resolved == nil || !n.Resolved.Loopback {
		t.Fatalf("status inside the namespace: system %v, %+v", st.System, st.Sites[0].Names[0])
	}
	after, _ := os.Stat(hf)
	a, b := after.Sys().(*syscall.Stat_t), before.Sys().(*syscall.Stat_t)
	if after.Mode() != before.Mode() || a.Uid != b.Uid || a.Gid != b.Gid || a.Ino != b.Ino {
		t.Fatalf("mode/owner/inode changed: %v %d:%d → %v %d:%d", before.Mode(), b.Uid, b.Gid, after.Mode(), a.Uid, a.Gid)
	}
	if got, _ := os.ReadFile(hf); !bytes.Equal(got, orig) {
		t.Fatalf("apply→remove through the bind mount not byte-identical")
	}
	if m, _ := filepath.Glob("/etc/.hosts.siteplex-*"); len(m) > 0 {
		t.Fatalf("temporary files left in /etc: %v", m)
	}
}

func TestHostsNoPermission(t *testing.T) {
	bin := hostsBinary(t)
	orig := "127.0.0.1 localhost\n"
	root, hf := hostsProject(t, orig, map[string]string{"gh": "example.gh"})
	if err := os.Chmod(hf, 0o444); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	os.Chmod(state, 0o777)
	cmd := testenv.AsNobody(context.Background(), t, bin,
		"hosts", "apply", "gh", "--project", root, "--hosts-file", hf)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state, "HOME="+state)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want 1\n%s", err, stderr.String())
	}
	want := "sudo " + bin + " hosts apply gh --hosts-file " + hf + " --project " + root
	if !strings.Contains(stderr.String(), "\n  "+want+"\n") {
		t.Fatalf("stderr does not give the exact sudo command %q:\n%s", want, stderr.String())
	}
	if got, _ := os.ReadFile(hf); string(got) != orig {
		t.Fatal("file changed")
	}
	if st, _ := os.Stat(hf); st.Mode().Perm() != 0o444 {
		t.Fatalf("permissions loosened to %v", st.Mode())
	}
	// The command it gives works (as root; sudo itself is not needed here).
	argv := strings.Fields(want)[1:]
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", want, err, out)
	}
	if got, _ := os.ReadFile(hf); !strings.Contains(string(got), "127.0.0.1 example.gh") {
		t.Fatal("the suggested command did not apply")
	}
	// --dry-run needs no permission.
	cmd = testenv.AsNobody(context.Background(), t, bin,
		"hosts", "remove", "--dry-run", "--project", root, "--hosts-file", hf)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state, "HOME="+state)
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "-127.0.0.1 example.gh") {
		t.Fatalf("dry run as nobody: %v\n%s", err, out)
	}
}

// BenchmarkHostsApplyCLI10k runs `siteplex hosts apply` in process over
// 10,000 sites in SQLite and a 1 MB hosts file: loading the sites plus the
// safe write. bench/hosts.sh measures the same through the real binary.
func BenchmarkHostsApplyCLI10k(b *testing.B) {
	for _, noop := range []bool{false, true} {
		name := "apply"
		if noop {
			name = "noop"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			b.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
			b.Setenv("SITEPLEX_HOSTS_FILE", "")
			db := filepath.Join(dir, "db.sqlite3")
			sql := `CREATE TABLE django_site (id integer PRIMARY KEY, domain varchar(100) NOT NULL UNIQUE, name varchar(50) NOT NULL);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10000)
INSERT INTO django_site SELECT i, printf('site%05d.example.test', i), printf('Site %d', i) FROM c;`
			if out, err := exec.Command("sqlite3", db, sql).CombinedOutput(); err != nil {
				b.Skipf("sqlite3: %v %s", err, out)
			}
			var hb strings.Builder
			for i := 0; hb.Len() < 1<<20; i++ {
				fmt.Fprintf(&hb, "0.0.0.0 ads%d.tracker.example.com\r\n", i)
			}
			hf := filepath.Join(dir, "hosts")
			args := []string{"--project", dir, "--db", "sqlite:///" + db, "--hosts-file", hf, "hosts", "apply"}
			os.WriteFile(hf, []byte(hb.String()), 0o644)
			if noop {
				if code, _, errs := runHosts(nil, args...); code != 0 {
					b.Fatal(errs)
				}
			}
			var cpu time.Duration
			n := 0
			for b.Loop() {
				if !noop {
					b.StopTimer()
					os.WriteFile(hf, []byte(hb.String()), 0o644)
					b.StartTimer()
				}
				c0 := hostsCPUTime()
				if code, _, errs := runHosts(nil, args...); code != 0 {
					b.Fatal(errs)
				}
				cpu += hostsCPUTime() - c0
				n++
			}
			// The machine may be shared: CPU time per op does not depend on
			// the neighbours, wall time does.
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "cpu-ms/op")
		})
	}
}

// hostsCPUTime is the CPU time (user+system) this process has used so far.
func hostsCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A file this user may write in a folder it may not (for example a hosts
// file made writable by its owner): no temporary file can be made beside
// it, so it is rewritten in place, keeping its inode and owner.
func TestHostsWritableFileInLockedFolder(t *testing.T) {
	bin := hostsBinary(t)
	orig := "127.0.0.1 localhost\n"
	root, hf := hostsProject(t, orig, map[string]string{"gh": "example.gh"})
	if err := os.Chown(hf, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(hf)
	state := t.TempDir()
	os.Chmod(state, 0o777)
	cmd := testenv.AsNobody(context.Background(), t, bin,
		"hosts", "apply", "--project", root, "--hosts-file", hf)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state, "HOME="+state)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "rewritten in place") {
		t.Fatalf("apply as the file's owner: %v\n%s", err, out)
	}
	after, _ := os.Stat(hf)
	if !os.SameFile(before, after) || after.Sys().(*syscall.Stat_t).Uid != 65534 || after.Mode() != before.Mode() {
		t.Fatal("inode, owner or mode changed")
	}
	if got, _ := os.ReadFile(hf); !strings.Contains(string(got), "::1 example.gh") {
		t.Fatalf("not applied: %q", got)
	}
}

// The JSON shape of `hosts status --json` is documented in docs/hosts.md.
func TestHostsStatusJSONShape(t *testing.T) {
	root, hf := hostsProject(t, "127.0.0.1 localhost\n", map[string]string{"gh": "example.gh", "bad": "bad#name"})
	if code, _, errs := runHosts(t, "hosts", "apply", "gh", "--project", root, "--hosts-file", hf); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := runHosts(t, "hosts", "status", "--json", "--project", root, "--hosts-file", hf)
	if code != 0 {
		t.Fatal(errs)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) []string {
		var k []string
		for s := range m {
			k = append(k, s)
		}
		slices.Sort(k)
		return k
	}
	want := []string{"block", "foreign_lines", "hosts_file", "interrupted_write", "legacy_marker", "line", "marker", "names", "other_names", "project", "sites", "system"}
	if got := keys(v); !slices.Equal(got, want) {
		t.Fatalf("top-level keys %q, want %q", got, want)
	}
	sitesList := v["sites"].([]any)
	site := sitesList[1].(map[string]any) // gh (id 2)
	if got := keys(site); !slices.Equal(got, []string{"applied", "domain", "id", "names", "problems", "slug", "usable"}) {
		t.Fatalf("site keys %q", got)
	}
	name := site["names"].([]any)[0].(map[string]any)
	if got := keys(name); !slices.Equal(got, []string{"elsewhere", "in_block", "kind", "name"}) {
		t.Fatalf("name keys %q (resolved only for the system file)", got)
	}
	if site["applied"] != true || name["in_block"] != true || name["kind"] != "domain" {
		t.Fatalf("gh: %v", site)
	}
	bad := sitesList[0].(map[string]any)
	if bad["usable"] != false || len(bad["problems"].([]any)) == 0 || bad["names"].([]any)[0].(map[string]any)["error"] == nil {
		t.Fatalf("bad site: %v", bad)
	}
}

func TestHostsNamesSelection(t *testing.T) {
	root, hf := hostsProject(t, "", nil)
	toml := "name = \"acme\"\n[sites.gh]\nid = 2\ndomain = \"example.gh\"\naliases = [\"gh.example-stage.eu\", \"bad alias\"]\n"
	if err := os.WriteFile(filepath.Join(root, "siteplex.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		names string
		want  []string
		code  int
	}{
		{"", []string{"example.gh"}, 0},
		{"domain", []string{"example.gh"}, 0},
		{"local", []string{"example.gh", "gh.localhost"}, 0},
		{"aliases", []string{"example.gh", "gh.example-stage.eu"}, 1}, // "bad alias" refused
		{"all", []string{"example.gh", "gh.localhost", "gh.example-stage.eu"}, 1},
	}
	for _, tt := range tests {
		t.Run("names="+tt.names, func(t *testing.T) {
			os.WriteFile(hf, nil, 0o644)
			args := []string{"hosts", "apply", "gh", "--project", root, "--hosts-file", hf}
			if tt.names != "" {
				args = append(args, "--names", tt.names)
			}
			code, _, stderr := runHosts(t, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			if tt.code == 1 && !strings.Contains(stderr, `site 2 (gh): alias name not written`) {
				t.Fatalf("stderr does not name the site and the alias: %s", stderr)
			}
			data, _ := os.ReadFile(hf)
			doc, _ := hosts.Parse(data, hosts.KeyFor("acme", root))
			if !slices.Equal(doc.Names(), tt.want) {
				t.Fatalf("names %q, want %q", doc.Names(), tt.want)
			}
			// remove SITE takes every kind of name out.
			if code, _, _ := runHosts(t, "hosts", "remove", "gh", "--project", root, "--hosts-file", hf); code != 0 {
				t.Fatal("remove")
			}
			if data, _ := os.ReadFile(hf); len(data) != 0 {
				t.Fatalf("after remove: %q", data)
			}
		})
	}
}

// TestHostsSameNamedProjects: two projects whose folders have the same
// name keep a block each; `hosts remove` in one leaves the other's names
// (issue 15: they shared one block).
func TestHostsSameNamedProjects(t *testing.T) {
	a, hf := hostsProject(t, "127.0.0.1 localhost\n", map[string]string{"one": "one.example"})
	b, _ := hostsProject(t, "", map[string]string{"two": "two.example"})
	for _, root := range []string{a, b} {
		if code, _, errs := runHosts(t, "hosts", "apply", "--project", root, "--hosts-file", hf); code != 0 {
			t.Fatal(errs)
		}
	}
	if code, _, errs := runHosts(t, "hosts", "remove", "--project", a, "--hosts-file", hf); code != 0 {
		t.Fatal(errs)
	}
	got, _ := os.ReadFile(hf)
	doc, err := hosts.Parse(got, hosts.KeyFor("acme", b))
	if err != nil || !slices.Equal(doc.Names(), []string{"two.example"}) || bytes.Contains(got, []byte("one.example")) {
		t.Fatalf("after removing the first project's block:\n%s", got)
	}
}

// TestHostsForeignLinesInBlockCLI: a line the user put inside siteplex's
// block comes out of it unchanged, with a warning naming it (issue 15: it
// was rewritten to 127.0.0.1 and lost its comment); a block nested in
// another project's is refused, naming the lines.
func TestHostsForeignLinesInBlockCLI(t *testing.T) {
	root, hf := hostsProject(t, "", map[string]string{"gh": "example.gh"})
	k := hosts.KeyFor("acme", root)
	orig := "127.0.0.1 localhost\n" + hosts.BeginMarker(k) + "\n127.0.0.1 example.gh\n192.168.1.50 nas.internal # NAS\n::1 example.gh\n" + hosts.EndMarker(k) + "\n"
	os.WriteFile(hf, []byte(orig), 0o644)
	code, out, errs := runHosts(t, "hosts", "status", "--project", root, "--hosts-file", hf)
	if code != 0 || !strings.Contains(out, "line 4 is in the block but siteplex did not write it") {
		t.Fatalf("status: %d\n%s%s", code, out, errs)
	}
	code, _, errs = runHosts(t, "hosts", "apply", "--project", root, "--hosts-file", hf)
	if code != 0 || !strings.Contains(errs, "line 4: 192.168.1.50 nas.internal # NAS") {
		t.Fatalf("apply: %d\n%s", code, errs)
	}
	want := "127.0.0.1 localhost\n192.168.1.50 nas.internal # NAS\n" + hosts.BeginMarker(k) + "\n127.0.0.1 example.gh\n::1 example.gh\n" + hosts.EndMarker(k) + "\n"
	if got, _ := os.ReadFile(hf); string(got) != want {
		t.Fatalf("file:\n%q\nwant\n%q", got, want)
	}

	nested := "# siteplex begin other 12345678\n" + hosts.BeginMarker(k) + "\n127.0.0.1 example.gh\n" + hosts.EndMarker(k) + "\n# siteplex end other 12345678\n"
	os.WriteFile(hf, []byte(nested), 0o644)
	code, _, errs = runHosts(t, "hosts", "apply", "--project", root, "--hosts-file", hf)
	if code != 1 || !strings.Contains(errs, "line 2") || !strings.Contains(errs, "nested or overlapping blocks are refused") {
		t.Fatalf("nested block: %d\n%s", code, errs)
	}
	if got, _ := os.ReadFile(hf); string(got) != nested {
		t.Fatal("a nested block was edited")
	}
}

// TestHostsRestoreCLI: `hosts restore --list` shows the backups, `hosts
// restore` undoes the last change, `hosts restore pristine` gives back the
// file as it was before siteplex first touched it.
func TestHostsRestoreCLI(t *testing.T) {
	orig := "127.0.0.1 localhost\n"
	root, hf := hostsProject(t, orig, map[string]string{"gh": "example.gh", "de": "example.de"})
	run := func(args ...string) (int, string, string) {
		return runHosts(t, append(append([]string{"hosts"}, args...), "--project", root, "--hosts-file", hf)...)
	}
	run("apply", "gh")
	afterGH, _ := os.ReadFile(hf)
	run("apply", "de")
	code, out, errs := run("restore", "--list")
	if code != 0 || !strings.Contains(out, "pristine") || strings.Count(out, "  hosts.") != 2 {
		t.Fatalf("restore --list: %d\n%s%s", code, out, errs)
	}
	if code, out, _ := run("restore", "--dry-run"); code != 0 || !strings.Contains(out, "-127.0.0.1 example.de") {
		t.Fatalf("restore --dry-run: %d\n%s", code, out)
	}
	if code, out, errs := run("restore"); code != 0 || !strings.Contains(out, "restored hosts.") {
		t.Fatalf("restore: %d\n%s%s", code, out, errs)
	}
	if got, _ := os.ReadFile(hf); !bytes.Equal(got, afterGH) {
		t.Fatalf("restore did not undo the last change:\n%s", got)
	}
	if code, _, errs := run("restore", "pristine"); code != 0 {
		t.Fatal(errs)
	}
	if got, _ := os.ReadFile(hf); string(got) != orig {
		t.Fatalf("restore pristine:\n%s", got)
	}
	if code, _, errs := run("restore", "/etc/passwd"); code != 1 || !strings.Contains(errs, "is not one of siteplex's backups") {
		t.Fatalf("restore of a file that is not a backup: %d %s", code, errs)
	}
}
