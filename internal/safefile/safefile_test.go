package safefile

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// setup makes a file holding data and Options whose backups go to a
// private state folder.
func setup(t *testing.T, data string) (string, Options) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "hosts")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "state", "siteplex")
	return p, Options{Root: root, Dir: filepath.Join(root, "hosts-backups", "x"), Prefix: "hosts.", Pristine: true, CreateMode: 0o644}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func set(s string) EditFunc { return func([]byte) ([]byte, error) { return []byte(s), nil } }

func ino(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func TestUpdateReplacesAndBacksUp(t *testing.T) {
	p, o := setup(t, "old\n")
	before := ino(t, p)
	res, err := Update(context.Background(), p, o, set("new\n"))
	if err != nil || !res.Changed || res.InPlace {
		t.Fatalf("Update = %+v, %v", res, err)
	}
	if read(t, p) != "new\n" || ino(t, p) == before {
		t.Fatal("file not replaced by rename")
	}
	if read(t, res.Pristine) != "old\n" || read(t, res.Backup) != "old\n" {
		t.Fatal("backups do not hold the old content")
	}
	// No change: nothing written, no backup.
	list, _ := Backups(o.Dir, o.Prefix)
	res, err = Update(context.Background(), p, o, set("new\n"))
	if err != nil || res.Changed || res.Backup != "" {
		t.Fatalf("no-op Update = %+v, %v", res, err)
	}
	if l, _ := Backups(o.Dir, o.Prefix); len(l) != len(list) {
		t.Fatal("a no-op made a backup")
	}
}

// TestConcurrentChangeIsNeverOverwritten: another program writes the file
// between siteplex's read and its replace. siteplex notices, re-reads and
// applies its edit to the new content; when the file keeps changing it
// gives up and keeps the other program's bytes.
func TestConcurrentChangeIsNeverOverwritten(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		name := "rename"
		if inPlace {
			name = "in place"
		}
		t.Run(name, func(t *testing.T) {
			p, o := setup(t, "a\n")
			if inPlace {
				// A second hard link forces the in-place path.
				if err := os.Link(p, p+".link"); err != nil {
					t.Fatal(err)
				}
			}
			calls := 0
			res, err := Update(context.Background(), p, o, func(old []byte) ([]byte, error) {
				calls++
				if calls == 1 {
					// The user's editor saves between the read and the replace.
					if err := os.WriteFile(p, []byte("a\nthe user's line\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return append(append([]byte(nil), old...), "siteplex\n"...), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := read(t, p); got != "a\nthe user's line\nsiteplex\n" {
				t.Fatalf("file = %q: the concurrent change was lost", got)
			}
			if res.Retried != 1 || res.InPlace != inPlace {
				t.Fatalf("retried %d, in place %v", res.Retried, res.InPlace)
			}

			// A file that changes at every attempt: give up, keep theirs.
			n := 0
			_, err = Update(context.Background(), p, o, func(old []byte) ([]byte, error) {
				n++
				os.WriteFile(p, []byte(strings.Repeat("x", n)), 0o644)
				return []byte("siteplex's"), nil
			})
			var ce *ConcurrentChangeError
			if !errors.As(err, &ce) || ce.Attempts != 3 {
				t.Fatalf("err = %v, want a *ConcurrentChangeError after 3 attempts", err)
			}
			if got := read(t, p); got != "xxx" {
				t.Fatalf("file = %q, want the other program's last write", got)
			}
			if _, err := os.Stat(filepath.Join(o.Dir, intentName)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("intent file left behind")
			}
		})
	}
}

func TestHardLinksAreKept(t *testing.T) {
	p, o := setup(t, "old\n")
	link := p + ".link"
	if err := os.Link(p, link); err != nil {
		t.Fatal(err)
	}
	res, err := Update(context.Background(), p, o, set("new content, longer\n"))
	if err != nil || !res.InPlace {
		t.Fatalf("Update = %+v, %v; want an in-place write", res, err)
	}
	if read(t, link) != "new content, longer\n" || ino(t, p) != ino(t, link) {
		t.Fatal("the hard link was split")
	}
	if _, err := Update(context.Background(), p, o, set("s\n")); err != nil || read(t, link) != "s\n" {
		t.Fatalf("shrinking in place: %v, %q", err, read(t, link))
	}
}

func TestResolveRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	// A chain a → b → c where c does not exist.
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Symlink("b", a)
	os.Symlink("c", b)
	_, o := setup(t, "")
	_, err := Update(context.Background(), a, o, set("x"))
	var de *DanglingLinkError
	if !errors.As(err, &de) || de.Target != filepath.Join(dir, "c") {
		t.Fatalf("err = %v, want a *DanglingLinkError naming c", err)
	}
	for _, l := range []string{a, b} {
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s is no longer a symlink", l)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "c")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the link's target was created")
	}
	for _, p := range []string{"/dev/null", dir} {
		_, err := Update(context.Background(), p, o, set("x"))
		var ne *NotRegularError
		if !errors.As(err, &ne) {
			t.Fatalf("%s: err = %v, want a *NotRegularError", p, err)
		}
	}
	if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatal("/dev/null is no longer a device")
	}
	// A working chain is followed and edited where the file lives.
	os.WriteFile(filepath.Join(dir, "c"), []byte("c\n"), 0o600)
	if _, err := Update(context.Background(), a, o, set("c2\n")); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(dir, "c")) != "c2\n" {
		t.Fatal("target not edited")
	}
	for _, l := range []string{a, b} {
		if fi, _ := os.Lstat(l); fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s was replaced", l)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "c")); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
}

func TestMissingFile(t *testing.T) {
	dir := t.TempDir()
	_, o := setup(t, "")
	p := filepath.Join(dir, "new")
	if res, err := Update(context.Background(), p, o, set("")); err != nil || res.Changed {
		t.Fatalf("empty edit of a missing file = %+v, %v", res, err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("created a file for nothing")
	}
	if _, err := Update(context.Background(), p, o, set("x\n")); err != nil || read(t, p) != "x\n" {
		t.Fatalf("create: %v", err)
	}
	o.CreateMode = 0
	if _, err := Update(context.Background(), filepath.Join(dir, "other"), o, set("x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not-exist", err)
	}
}

func TestPrivateDir(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "siteplex")
	if err := PrivateDir(root, filepath.Join(root, "a", "b")); err != nil {
		t.Fatal(err)
	}
	var ue *UnsafeDirError
	// A symlink planted where a folder should be.
	elsewhere := t.TempDir()
	os.Symlink(elsewhere, filepath.Join(root, "a", "link"))
	if err := PrivateDir(root, filepath.Join(root, "a", "link", "c")); !errors.As(err, &ue) || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("through a symlink: %v", err)
	}
	os.Chmod(filepath.Join(root, "a"), 0o777)
	if err := PrivateDir(root, filepath.Join(root, "a", "b")); !errors.As(err, &ue) || !strings.Contains(err.Error(), "written by others") {
		t.Fatalf("world-writable: %v", err)
	}
	os.Chmod(filepath.Join(root, "a"), 0o700)
	if os.Geteuid() == 0 {
		os.Chown(filepath.Join(root, "a", "b"), 65534, 65534)
		if err := PrivateDir(root, filepath.Join(root, "a", "b")); !errors.As(err, &ue) || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Fatalf("someone else's: %v", err)
		}
	}
	if err := PrivateDir(root, "/etc"); err == nil {
		t.Fatal("a folder outside root was accepted")
	}
}

func TestStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/xdg")
	if d, err := StateDir(); err != nil || d != "/xdg/siteplex" {
		t.Fatalf("StateDir = %q, %v", d, err)
	}
	t.Setenv("XDG_STATE_HOME", "relative")
	t.Setenv("HOME", "/home/me")
	if d, err := StateDir(); err != nil || d != "/home/me/.local/state/siteplex" {
		t.Fatalf("StateDir = %q, %v", d, err)
	}
	// HOME unset: the user database's home, never a shared temp folder.
	t.Setenv("HOME", "")
	os.Unsetenv("HOME")
	d, err := StateDir()
	if err == nil && (strings.HasPrefix(d, os.TempDir()) || strings.HasPrefix(d, "/tmp")) {
		t.Fatalf("StateDir without HOME = %q: a shared folder", d)
	}
	if os.Geteuid() == 0 && (err != nil || d != "/root/.local/state/siteplex") {
		t.Fatalf("root without HOME: %q, %v", d, err)
	}
}

// TestPruningDeletesOnlyItsOwnBackups: files and links with other names,
// or with backup names but not regular files, are never deleted.
func TestPruningDeletesOnlyItsOwnBackups(t *testing.T) {
	p, o := setup(t, "0\n")
	if err := PrivateDir(o.Root, o.Dir); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "hosts.20000101T000000.000000000Z")
	os.WriteFile(victim, []byte("not siteplex's"), 0o644)
	planted := []string{"hosts.notabackup", "hosts.bak", "other"}
	for _, n := range planted {
		os.WriteFile(filepath.Join(o.Dir, n), []byte("keep"), 0o600)
	}
	os.Symlink(victim, filepath.Join(o.Dir, "hosts.19990101T000000.000000000Z"))
	for i := range 8 {
		if _, err := Update(context.Background(), p, o, set(strings.Repeat("x", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range planted {
		if _, err := os.Lstat(filepath.Join(o.Dir, n)); err != nil {
			t.Errorf("%s was deleted", n)
		}
	}
	if _, err := os.Lstat(filepath.Join(o.Dir, "hosts.19990101T000000.000000000Z")); err != nil {
		t.Error("the planted symlink was deleted")
	}
	if read(t, victim) != "not siteplex's" {
		t.Error("the symlink's target was touched")
	}
	if l, _ := Backups(o.Dir, o.Prefix); len(l) != DefaultKeep {
		t.Errorf("%d backups, want %d", len(l), DefaultKeep)
	}
}

// TestRecoverIntent: an intent file left by a killed in-place writer is
// completed or rolled back by the next Update, which says so.
func TestRecoverIntent(t *testing.T) {
	old := "127.0.0.1 localhost\n10.0.0.1 nas # the user's last line\n"
	// The block goes in the middle, so that new differs from old early.
	grown := "127.0.0.1 localhost\n# siteplex begin acme\n127.0.0.1 a.test\n# siteplex end acme\n10.0.0.1 nas # the user's last line\n"
	tests := []struct {
		name      string
		old, new  string
		file      string // what the killed writer left
		want      string // the file after recovery (before the next edit)
		recovered string
	}{
		{"killed before the write", old, grown, old, old, "before it changed anything"},
		{"killed after the write", old, grown, grown, grown, "after it had written everything"},
		{"killed half way through growing", old, grown, grown[:30] + old[30:], grown, "half way"},
		{"killed after reserving (write-extend)", old, grown, old + grown[len(old):], grown, "half way"},
		{"killed between write and truncate", grown, old, old + grown[len(old):], old, "half way"},
		{"changed by someone else since", old, grown, "the user rewrote it\n", "the user rewrote it\n", "changed by something else"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, o := setup(t, tt.file)
			if err := PrivateDir(o.Root, o.Dir); err != nil {
				t.Fatal(err)
			}
			w, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := writeIntent(o.Dir, p, w, []byte(tt.old), []byte(tt.new)); err != nil {
				t.Fatal(err)
			}
			w.Close()
			var seen string
			res, err := Update(context.Background(), p, o, func(b []byte) ([]byte, error) { seen = string(b); return b, nil })
			if err != nil {
				t.Fatal(err)
			}
			if seen != tt.want || read(t, p) != tt.want {
				t.Fatalf("after recovery: %q, want %q", read(t, p), tt.want)
			}
			if !strings.Contains(res.Recovered, tt.recovered) {
				t.Fatalf("Recovered = %q, want %q", res.Recovered, tt.recovered)
			}
			if Pending(o.Dir) {
				t.Fatal("intent file still there")
			}
			if tt.name == "changed by someone else since" {
				kept, _ := filepath.Glob(filepath.Join(o.Dir, "interrupted.*"))
				if len(kept) != 1 || read(t, kept[0]) != tt.old {
					t.Fatalf("the content from before was not kept: %v", kept)
				}
				if _, err := Restore(context.Background(), p, kept[0], o); err != nil || read(t, p) != tt.old {
					t.Fatalf("Restore(interrupted copy): %v", err)
				}
			}
		})
	}
}

func TestRestore(t *testing.T) {
	p, o := setup(t, "first\n")
	ctx := context.Background()
	Update(ctx, p, o, set("second\n"))
	Update(ctx, p, o, set("third\n"))
	list, _ := Backups(o.Dir, o.Prefix)
	if len(list) != 2 {
		t.Fatalf("backups %v", list)
	}
	if _, err := Restore(ctx, p, list[1], o); err != nil || read(t, p) != "second\n" {
		t.Fatalf("restore: %v %q", err, read(t, p))
	}
	if _, err := Restore(ctx, p, filepath.Join(o.Dir, PristineName), o); err != nil || read(t, p) != "first\n" {
		t.Fatalf("restore pristine: %v", err)
	}
	// The restore was backed up too.
	if l, _ := Backups(o.Dir, o.Prefix); read(t, l[len(l)-1]) != "second\n" {
		t.Fatal("restore made no backup of what it replaced")
	}
	for _, bad := range []string{"/etc/passwd", filepath.Join(o.Dir, "other"), filepath.Join(o.Dir, "..", "y", PristineName)} {
		if _, err := Restore(ctx, p, bad, o); err == nil {
			t.Fatalf("Restore(%s) accepted", bad)
		}
	}
	if read(t, p) != "first\n" {
		t.Fatal("a refused restore changed the file")
	}
}

func TestConsistent(t *testing.T) {
	old, new := []byte("abcdef"), []byte("ABCDEFGH")
	for _, tt := range []struct {
		cur  string
		want bool
	}{
		{"abcdef", true}, {"ABCDEFGH", true}, {"ABCdef", true}, {"abcdefGH", true},
		{"abcdef\x00\x00", true}, {"ABCDEFG", true}, {"xbcdef", false}, {"abc", false}, {"ABCDEFGHI", false},
	} {
		if got := consistent([]byte(tt.cur), old, new); got != tt.want {
			t.Errorf("consistent(%q) = %v", tt.cur, got)
		}
	}
	if !bytes.Equal(old, []byte("abcdef")) {
		t.Fatal("changed its input")
	}
}
