package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/hosts"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
	"github.com/siteplex/siteplex/tui"
)

// The tests in this file check issue 15's promise for the two writers
// (hosts file, env file): nothing the user owns is lost on a full disk, a
// kill, a concurrent editor or a hostile file. Each reproduces what an
// adversarial review found, with real processes, mounts and signals.

// nobodyState is a state folder uid 65534 may make its backup folder in.
func nobodyState(t *testing.T) string {
	t.Helper()
	state := worldReadableDir(t)
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	return state
}

func statOf(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t)
}

// TestUsePermissionMatrix runs `siteplex use` as uid 65534 on env files
// of every owner, mode and folder: where it may not open the file for
// writing it exits 1 with the exact fix and leaves the file exactly as it
// was (issue 15: root's 0644 file in a folder others may write was
// replaced, with a new owner, and exit 0); where it may, the file keeps
// its inode, owner and mode.
func TestUsePermissionMatrix(t *testing.T) {
	bin := buildSiteplex(t)
	const before = "# mine\r\nSITE_ID=1\r\n"
	tests := []struct {
		name       string
		dirMode    os.FileMode // the env file's folder, root's
		exists     bool
		owner      int // uid of the file
		mode       os.FileMode
		ok         bool
		message    string // part of stderr when refused
		wantInode  bool   // the inode is kept (in place)
		wantCreate bool
	}{
		{name: "root's 0644 file in a folder others may write", dirMode: 0o777, exists: true, owner: 0, mode: 0o644,
			message: "sudo chown nobody"},
		{name: "root's 0644 file in root's folder", dirMode: 0o755, exists: true, owner: 0, mode: 0o644,
			message: "it belongs to root, mode 0644"},
		{name: "root's 0666 file in root's folder", dirMode: 0o755, exists: true, owner: 0, mode: 0o666, ok: true, wantInode: true},
		{name: "root's 0666 file in a sticky folder", dirMode: 0o1777, exists: true, owner: 0, mode: 0o666, ok: true, wantInode: true},
		{name: "nobody's file in root's folder", dirMode: 0o755, exists: true, owner: 65534, mode: 0o640, ok: true, wantInode: true},
		{name: "nobody's read-only file", dirMode: 0o777, exists: true, owner: 65534, mode: 0o444,
			message: "chmod u+w"},
		{name: "no file, root's folder", dirMode: 0o755, message: "cannot create env file"},
		{name: "no file, a folder others may write", dirMode: 0o777, ok: true, wantCreate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proj := useProject(t, worldReadableDir(t), "")
			dir := worldReadableDir(t)
			env := filepath.Join(dir, ".env-local")
			if tt.exists {
				if err := os.WriteFile(env, []byte(before), tt.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(env, tt.mode)
				os.Chown(env, tt.owner, tt.owner)
			}
			if err := os.Chmod(dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			var ino uint64
			if tt.exists {
				ino = statOf(t, env).Ino
			}
			cmd := testenv.AsNobody(context.Background(), t, bin, "use", "two", "--project", proj, "--env-file", env)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "XDG_STATE_HOME=" + nobodyState(t)}
			out, err := cmd.CombinedOutput()
			if tt.ok != (err == nil) {
				t.Fatalf("use as nobody: %v, want ok=%v\n%s", err, tt.ok, out)
			}
			if !tt.ok {
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), tt.message) || !strings.Contains(string(out), "nothing was written") {
					t.Fatalf("exit %v, want 1 with %q and 'nothing was written':\n%s", err, tt.message, out)
				}
				if !tt.exists {
					if _, err := os.Lstat(env); !os.IsNotExist(err) {
						t.Fatal("a file was created")
					}
				} else if b, _ := os.ReadFile(env); string(b) != before {
					t.Fatalf("env file changed: %q", b)
				}
			} else {
				want := strings.Replace(before, "SITE_ID=1", "SITE_ID=2", 1)
				if !tt.exists {
					want = "SITE_ID=2\n"
				}
				if b, _ := os.ReadFile(env); string(b) != want {
					t.Fatalf("env file = %q, want %q", b, want)
				}
			}
			if tt.exists {
				st := statOf(t, env)
				if int(st.Uid) != tt.owner || os.FileMode(st.Mode).Perm() != tt.mode {
					t.Fatalf("owner %d mode %o, want %d %o", st.Uid, st.Mode&0o777, tt.owner, tt.mode)
				}
				if (st.Ino == ino) != (tt.wantInode || !tt.ok) {
					t.Fatalf("inode kept = %v", st.Ino == ino)
				}
			}
			if tt.wantCreate {
				if st := statOf(t, env); st.Uid != 65534 || st.Mode&0o777 != 0o644 {
					t.Fatalf("created with owner %d mode %o", st.Uid, st.Mode&0o777)
				}
			}
			ents, _ := os.ReadDir(dir)
			if n := len(ents); n > 1 || n == 1 && ents[0].Name() != ".env-local" {
				t.Fatalf("files left beside the env file: %v", ents)
			}
		})
	}
}

// privateNamespace skips unless unshare -m works (root, no seccomp ban).
func privateNamespace(t *testing.T) {
	t.Helper()
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		testenv.Missing(t, "unshare -m is not permitted here (%v): cannot mount in a private namespace", err)
	}
}

// TestUseDevNullInPrivateDev: as root, `--env-file /dev/null` is refused,
// and /dev/null stays a device (issue 15: it was replaced by a regular
// file). It runs in a private mount namespace with its own /dev, so a
// regression cannot break the machine's.
func TestUseDevNullInPrivateDev(t *testing.T) {
	privateNamespace(t)
	bin := buildSiteplex(t)
	proj := useProject(t, "", "")
	script := `set -u
mount -t tmpfs -o size=1m tmpfs /dev || exit 20
mknod -m 666 /dev/null c 1 3 || exit 21
"$BIN" use two --project "$PROJ" --env-file /dev/null; echo "use exit $?"
"$BIN" use --clear --project "$PROJ" --env-file /dev/null; echo "clear exit $?"
stat -c '%F %a' /dev/null`
	cmd := exec.Command("unshare", "-m", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "BIN="+bin, "PROJ="+proj)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("namespace script: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "use exit 1") || !strings.Contains(s, "not a regular file (a character device)") {
		t.Fatalf("use --env-file /dev/null was not refused:\n%s", s)
	}
	if !strings.Contains(s, "clear exit 0") && !strings.Contains(s, "clear exit 1") {
		t.Fatalf("use --clear: %s", s)
	}
	if !strings.Contains(s, "character special file 666") {
		t.Fatalf("/dev/null is no longer a device:\n%s", s)
	}
}

// TestFullDiskInPlace: a hosts file and an env file bind-mounted from a
// full tmpfs (the in-place path: a rename cannot replace a mount point)
// are left exactly as they were, with exit 1 and a message saying so
// (issue 15: the hosts file lost its last lines and status still said 0).
func TestFullDiskInPlace(t *testing.T) {
	privateNamespace(t)
	bin := buildSiteplex(t)
	var big strings.Builder
	big.WriteString("127.0.0.1 localhost\n")
	for i := 0; big.Len() < 6000; i++ {
		fmt.Fprintf(&big, "10.0.%d.%d host%d.lan # the user's\n", i/250, i%250, i)
	}
	big.WriteString("10.9.9.9 last-line.lan # the user's last line\n")
	orig := big.String()
	domains := map[string]string{}
	// 20 names of 120 characters: the block needs more than a 4 KiB page.
	for i := range 20 {
		domains[fmt.Sprintf("s%02d", i)] = fmt.Sprintf("site%02d.%s.%s.example.test", i, strings.Repeat("a", 50), strings.Repeat("b", 50))
	}
	root, _ := hostsProject(t, "", domains)
	// An env file of exactly one page: one more byte needs another.
	envOrig := "# env " + strings.Repeat("x", 4096-len("# env \nSITE_ID=1\n")) + "\nSITE_ID=1\n"
	if err := os.WriteFile(filepath.Join(root, ".env-local"), []byte(envOrig), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	script := `set -u
mount -t tmpfs -o size=64k tmpfs "$DISK" || exit 20
printf '%s' "$ORIG" > "$DISK/hosts"
cp "$ENVORIG" "$DISK/env"
# Fill the disk.
dd if=/dev/zero of="$DISK/filler" bs=4k 2>/dev/null
mount --bind "$DISK/hosts" /etc/hosts || exit 21
mount --bind "$DISK/env" "$ROOT/.env-local" || exit 22
"$BIN" --project "$ROOT" hosts apply; echo "apply exit $?"
cmp -s "$DISK/hosts" "$ORIGFILE" && echo "hosts unchanged"
"$BIN" --project "$ROOT" hosts status > /dev/null; echo "status exit $?"
"$BIN" --project "$ROOT" use s10; echo "use exit $?"
cmp -s "$DISK/env" "$ENVORIG" && echo "env unchanged"
rm "$DISK/filler"
"$BIN" --project "$ROOT" hosts apply; echo "apply with room exit $?"
"$BIN" --project "$ROOT" hosts remove; echo "remove exit $?"
cmp -s "$DISK/hosts" "$ORIGFILE" && echo "hosts back to the original"
"$BIN" --project "$ROOT" use s10; echo "use with room exit $?"
tail -c 11 "$DISK/env"`
	origFile := filepath.Join(tmp, "orig")
	os.WriteFile(origFile, []byte(orig), 0o644)
	envOrigFile := filepath.Join(tmp, "envorig")
	os.WriteFile(envOrigFile, []byte(envOrig), 0o644)
	disk := filepath.Join(tmp, "disk")
	os.Mkdir(disk, 0o755)
	cmd := exec.Command("unshare", "-m", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "BIN="+bin, "ROOT="+root, "DISK="+disk, "ORIG="+orig, "ORIGFILE="+origFile, "ENVORIG="+envOrigFile,
		"SITEPLEX_HOSTS_FILE=", "XDG_STATE_HOME="+filepath.Join(tmp, "state"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("namespace script: %v\n%s", err, out)
	}
	s := string(out)
	t.Logf("%s", s)
	for _, want := range []string{
		"apply exit 1", "hosts unchanged", "no space left on device", "was not changed", "status exit 0",
		"use exit 1", "env unchanged",
		"apply with room exit 0", "rewritten in place", "remove exit 0", "hosts back to the original",
		"use with room exit 0", "\nSITE_ID=11\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// needStrace skips loudly unless strace can trace here: it injects the
// kills and the delays (fault injection) of these tests.
func needStrace(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("strace"); err != nil {
		testenv.Missing(t, "strace (apt-get install strace): it injects the kills and delays")
	}
	if err := exec.Command("strace", "-qq", "-o", "/dev/null", "true").Run(); err != nil {
		testenv.Missing(t, "strace cannot trace here (ptrace not permitted?): %v", err)
	}
}

// killAt runs bin with args under strace, killing it with SIGKILL when
// it enters syscall on path (strace's fault injection), and says whether
// it was killed.
func killAt(t *testing.T, syscall, path string, env []string, bin string, args ...string) bool {
	t.Helper()
	argv := append([]string{"-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall, "-e", "inject=" + syscall + ":signal=SIGKILL", "-P", path, bin}, args...)
	cmd := exec.Command("strace", argv...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil {
		return false
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 128+9 && !strings.Contains(string(out), "Killed") {
		t.Logf("strace %s: %v\n%s", syscall, err, out)
	}
	return ok && (ee.ExitCode() == 137 || ee.ExitCode() == -1)
}

// TestKilledInPlaceWrite kills siteplex (SIGKILL, through strace's fault
// injection) at each step of the in-place write — reserving the space,
// writing, syncing, truncating, removing the intent file — for the hosts
// file and the env file, growing and shrinking them. The file is never
// left torn or doubled, and the next command finishes or undoes the
// interrupted write and says so (issue 15: a kill between write and
// truncate doubled lines and every later command refused with "end
// without begin"; a kill left a 0-byte env file). A second hard link
// keeps the file's inode and so takes the in-place path.
func TestKilledInPlaceWrite(t *testing.T) {
	needStrace(t)
	bin := buildSiteplex(t)
	steps := []struct {
		syscall string
		intent  bool // the syscall is on the intent file, not the file
	}{
		{"fallocate", false}, {"pwrite64", false}, {"fsync", false}, {"ftruncate", false}, {"unlink,unlinkat", true},
	}
	var orig strings.Builder
	orig.WriteString("127.0.0.1 localhost\n")
	for i := range 200 {
		fmt.Fprintf(&orig, "10.1.%d.%d nas%d.lan # the user's\n", i/250, i%250, i)
	}
	orig.WriteString("10.9.9.9 last.lan # the user's last line\n")
	domains := map[string]string{}
	for i := range 30 {
		domains[fmt.Sprintf("s%02d", i)] = fmt.Sprintf("site%02d.example.test", i)
	}
	for _, st := range steps {
		for _, op := range []string{"apply", "remove"} {
			t.Run("hosts "+op+" killed at "+st.syscall, func(t *testing.T) {
				root, hf := hostsProject(t, orig.String(), domains)
				env := append(os.Environ(), "SITEPLEX_HOSTS_FILE=")
				run := func(args ...string) (string, error) {
					c := exec.Command(bin, append(args, "--project", root, "--hosts-file", hf)...)
					c.Env = env
					out, err := c.CombinedOutput()
					return string(out), err
				}
				if op == "remove" {
					if out, err := run("hosts", "apply"); err != nil {
						t.Fatalf("%v\n%s", err, out)
					}
				}
				before, _ := os.ReadFile(hf)
				if err := os.Link(hf, hf+".link"); err != nil {
					t.Fatal(err)
				}
				target := hf
				if st.intent {
					target = filepath.Join(hosts.BackupFolder("", hf), "intent")
				}
				if !killAt(t, st.syscall, target, env, bin, "hosts", op, "--project", root, "--hosts-file", hf) {
					if st.syscall == "fallocate" && op == "remove" || st.syscall == "ftruncate" && op == "apply" {
						return // a shrink reserves nothing; a growth truncates nothing
					}
					t.Fatalf("siteplex was not killed at %s", st.syscall)
				}
				// The file may be half written now; the intent file says so.
				intent := filepath.Join(hosts.BackupFolder("", hf), "intent")
				if _, err := os.Stat(intent); err == nil {
					if status, _ := run("hosts", "status"); !strings.Contains(status, "interrupted") {
						t.Errorf("status after the kill does not say a write was interrupted:\n%s", status)
					}
				} else if mid, _ := os.ReadFile(hf); !bytes.Equal(mid, before) {
					t.Fatal("the file changed but no intent file was kept")
				}
				out, err := run("hosts", op)
				if err != nil {
					t.Fatalf("the next %s: %v\n%s", op, err, out)
				}
				if !strings.Contains(out, "interrupted") {
					t.Errorf("the next command does not say it dealt with the interrupted write:\n%s", out)
				}
				after, _ := os.ReadFile(hf)
				d2, err := hosts.Parse(after, hosts.KeyFor("acme", root))
				if err != nil {
					t.Fatalf("file does not parse after recovery: %v", err)
				}
				if got := string(d2.Outside()); got != orig.String() {
					t.Fatalf("the user's lines changed:\n%q", got)
				}
				if op == "apply" && len(d2.Names()) != len(domains) || op == "remove" && d2.HasBlock() {
					t.Fatalf("after recovery and %s: %d names", op, len(d2.Names()))
				}
				link, _ := os.ReadFile(hf + ".link")
				if !bytes.Equal(link, after) {
					t.Fatal("the hard link was split")
				}
			})
		}
		t.Run("env killed at "+st.syscall, func(t *testing.T) {
			proj := t.TempDir()
			toml := "[sites.small]\nid = 1\ndomain = \"small.example\"\n[sites.big]\nid = 12345678901\ndomain = \"big.example\"\n" +
				"[sites.three]\nid = 3\ndomain = \"three.example\"\n"
			os.WriteFile(filepath.Join(proj, "siteplex.toml"), []byte(toml), 0o644)
			envFile := filepath.Join(proj, ".env-local")
			content := "# local\nCERT=\"-----BEGIN-----\nSITE_ID=9\n-----END-----\"\nSITE_ID=1\nLAST=the user's last line\n"
			os.WriteFile(envFile, []byte(content), 0o600)
			os.Link(envFile, envFile+".link")
			env := os.Environ()
			target := envFile
			if st.intent {
				base, _ := hosts.StateDir()
				real, _ := filepath.EvalSymlinks(envFile)
				target = filepath.Join(sites.EnvBackupFolder(base, real), "intent")
			}
			// SITE_ID=1 → 12345678901: the file grows.
			if !killAt(t, st.syscall, target, env, bin, "use", "--project", proj, "big") {
				if st.syscall == "ftruncate" {
					return
				}
				t.Fatalf("siteplex was not killed at %s", st.syscall)
			}
			mid, _ := os.ReadFile(envFile)
			if len(mid) == 0 {
				t.Fatal("the kill left a 0-byte env file")
			}
			c := exec.Command(bin, "use", "--project", proj, "3")
			out, err := c.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "interrupted") {
				t.Fatalf("the next use: %v\n%s", err, out)
			}
			want := strings.Replace(content, "SITE_ID=1\n", "SITE_ID=3\n", 1)
			if b, _ := os.ReadFile(envFile); string(b) != want {
				t.Fatalf("env file = %q, want %q", b, want)
			}
		})
	}
}

// TestConcurrentEditorIsNotOverwritten: an editor saves the file while
// siteplex is between its read and its replace (strace delays siteplex
// there). siteplex notices, re-reads and applies its change to the
// editor's version: nothing of the editor's is lost (issue 15), on the
// rename path and on the in-place path, for both writers.
func TestConcurrentEditorIsNotOverwritten(t *testing.T) {
	needStrace(t)
	bin := buildSiteplex(t)
	for _, inPlace := range []bool{false, true} {
		name := "rename"
		if inPlace {
			name = "in place"
		}
		t.Run("hosts "+name, func(t *testing.T) {
			root, hf := hostsProject(t, "127.0.0.1 localhost\n", map[string]string{"gh": "example.gh"})
			if inPlace {
				os.Link(hf, hf+".link")
			}
			// Rename path: hold the fchmod of the temporary file (just
			// before the check); in place: hold the rename of the intent
			// file (just before the check).
			syscallName, path := "fchmod", ""
			if inPlace {
				syscallName, path = "rename,renameat,renameat2", filepath.Join(hosts.BackupFolder("", hf), "intent")
			}
			ready := tempBeside(hf)
			if inPlace {
				ready = exists(filepath.Join(hosts.BackupFolder("", hf), "intent.tmp"))
			}
			out := delayedRun(t, syscallName, path, ready, func() {
				f, err := os.OpenFile(hf, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Error(err)
					return
				}
				f.WriteString("10.0.0.7 printer.lan # added in the editor\n")
				f.Close()
			}, bin, "hosts", "apply", "--project", root, "--hosts-file", hf)
			got, _ := os.ReadFile(hf)
			if !strings.Contains(string(got), "printer.lan # added in the editor") || !strings.Contains(string(got), "127.0.0.1 example.gh") {
				t.Fatalf("file after the race:\n%s\noutput:\n%s", got, out)
			}
			if !strings.Contains(out, "changed while siteplex was writing it") {
				t.Errorf("siteplex did not say it re-applied:\n%s", out)
			}
		})
	}
	t.Run("env rename", func(t *testing.T) {
		proj := useProject(t, "", "")
		envFile := filepath.Join(proj, ".env-local")
		os.WriteFile(envFile, []byte("SITE_ID=1\n"), 0o644)
		delayedRun(t, "fchmod", "", tempBeside(envFile), func() {
			os.WriteFile(envFile, []byte("SITE_ID=1\nDEBUG=1 # the editor's\n"), 0o644)
		}, bin, "use", "two", "--project", proj)
		if b, _ := os.ReadFile(envFile); string(b) != "SITE_ID=2\nDEBUG=1 # the editor's\n" {
			t.Fatalf("env file = %q", b)
		}
	})
}

// delayedRun runs bin under strace, holding it for 5 s on entering
// syscall (on path, when given); once ready reports true (siteplex has
// read the file and is on its way to the replace), it runs edit. It
// returns the output.
func delayedRun(t *testing.T, syscall, path string, ready func() bool, edit func(), bin string, args ...string) string {
	t.Helper()
	argv := []string{"-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall, "-e", "inject=" + syscall + ":delay_enter=5000000:when=1"}
	if path != "" {
		argv = append(argv, "-P", path)
	}
	cmd := exec.Command("strace", append(append(argv, bin), args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for !ready() {
		select {
		case err := <-done:
			t.Fatalf("siteplex finished before the edit could race it: %v\n%s", err, out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	edit()
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return out.String()
}

// tempBeside reports whether siteplex's temporary file is beside path.
func tempBeside(path string) func() bool {
	return func() bool {
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".siteplex-*"))
		return len(m) > 0
	}
}

func exists(path string) func() bool {
	return func() bool { _, err := os.Lstat(path); return err == nil }
}

// TestNoSecretInAnyOutput plants a password in the database URL — given
// with --db, in DATABASE_URL in the environment, and in the env file —
// and runs the commands that read or report the database, as uid 65534
// (whose `hosts apply` prints the sudo command to run) and as root, with
// the right password and a wrong one. The password appears in no output
// and in no command siteplex prints or runs (issue 15: the printed sudo
// command, and the UI's argv in ps, carried --db postgres://u:PASSWORD@…).
func TestNoSecretInAnyOutput(t *testing.T) {
	pg := testenv.StartPostgres(t)
	bin := buildSiteplex(t)
	const secret = "Sup3r-s3cret-pw"
	pg.DjangoDB(t, "secretdb", domainsRows)
	good := pg.CreatePasswordRole(t, "siteplex_secret", secret, "secretdb")
	pg.Exec(t, "secretdb", `GRANT ALL ON ALL TABLES IN SCHEMA public TO siteplex_secret; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO siteplex_secret`)
	bad := strings.Replace(good, secret, "wrong-"+secret, 1)
	if !strings.Contains(good, secret) {
		t.Fatalf("the URL %s does not carry the password", good)
	}

	root := worldReadableDir(t)
	os.WriteFile(filepath.Join(root, "manage.py"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "siteplex.toml"), []byte("name = \"secretproj\"\n"), 0o644)
	hf := filepath.Join(worldReadableDir(t), "hosts")
	state := nobodyState(t)

	var all strings.Builder
	check := func(what string, out []byte) {
		t.Helper()
		all.Write(out)
		for _, s := range []string{secret, url.QueryEscape(secret)} {
			if strings.Contains(string(out), s) {
				t.Errorf("%s printed the password:\n%s", what, out)
			}
		}
	}
	commands := [][]string{
		{"sites"}, {"sites", "--json"}, {"hosts", "status"}, {"hosts", "apply", "--dry-run"}, {"hosts", "apply"}, {"hosts", "apply", "gh"},
		{"hosts", "remove", "gh"}, {"use", "gh"}, {"use"}, {"use", "--clear"}, {"domains", "status"}, {"domains", "rewrite", "--dry-run"},
		{"domains", "restore"}, {"doctor"},
	}
	for _, dbURL := range []string{good, bad} {
		for _, source := range []string{"--db", "DATABASE_URL", "env file"} {
			envFile := filepath.Join(root, ".env-local")
			os.Remove(envFile)
			env := []string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent", "XDG_STATE_HOME=" + state, "SITEPLEX_HOSTS_FILE=" + hf}
			var args []string
			switch source {
			case "--db":
				args = []string{"--db", dbURL}
			case "DATABASE_URL":
				env = append(env, "DATABASE_URL="+dbURL)
			default:
				os.WriteFile(envFile, []byte("DEBUG=1\nDATABASE_URL="+dbURL+"\n"), 0o666)
				os.Chmod(envFile, 0o666)
			}
			for _, c := range commands {
				argv := append(append([]string{"--project", root}, args...), c...)
				what := fmt.Sprintf("siteplex %s (URL from %s)", strings.Join(c, " "), source)
				// As nobody first, on root's original hosts file: apply
				// needs root and prints the command.
				os.WriteFile(hf, []byte("127.0.0.1 localhost\n"), 0o644)
				nb := testenv.AsNobody(context.Background(), t, bin, argv...)
				nb.Env = env
				out, _ := nb.CombinedOutput()
				check(what+" as nobody", out)
				cmd := exec.Command(bin, argv...)
				cmd.Env = env
				out, _ = cmd.CombinedOutput()
				check(what, out)
			}
		}
	}
	// The sudo command was printed, so the check had something to look at.
	if !strings.Contains(all.String(), "It needs root; run:") || !strings.Contains(all.String(), "--host www.example.gh") {
		t.Fatalf("no sudo command was printed:\n%s", all.String())
	}

	// The UI's hand-off runs `sudo siteplex …`: its argv.
	f := newFactory(&IOStreams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
	f.Opts = sites.Options{Project: root, DB: good, HostsFile: hf}
	p, err := f.Project()
	if err != nil {
		t.Fatal(err)
	}
	h := uiHosts(f, p, uiExtras{}).(*tui.HostsFile)
	for _, verb := range []string{"apply", "remove"} {
		argv := h.SudoArgv(verb, []string{"www.example.gh"})
		if strings.Contains(strings.Join(argv, " "), secret) || !slices.Contains(argv, "www.example.gh") {
			t.Errorf("the UI's sudo argv: %q", argv)
		}
	}
}
