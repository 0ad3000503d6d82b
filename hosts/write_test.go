package hosts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/safefile"
)

// tempHosts writes data to a fresh hosts file and points backups at a
// temporary state folder.
func tempHosts(t *testing.T, data string) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	p := filepath.Join(dir, "hosts")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type fileID struct {
	ino   uint64
	mtime time.Time
}

func id(t *testing.T, p string) fileID {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fileID{st.Sys().(*syscall.Stat_t).Ino, st.ModTime()}
}

// megabyte is a realistic 1 MB hosts file (a blocklist), CRLF and all.
func megabyte() string {
	var b strings.Builder
	b.WriteString("\xEF\xBB\xBF# blocklist\r\n127.0.0.1 localhost\r\n\t::1\tlocalhost # tab\r\n")
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "0.0.0.0 ads%d.tracker-%d.example.com\r\n", i, i%97)
	}
	b.WriteString("0.0.0.0 last.example.com") // no final newline
	return b.String()
}

func TestApplyRemoveRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, in := range append(inputs(), struct {
		name string
		data []byte
	}{"1MB", []byte(megabyte())}) {
		t.Run(in.name, func(t *testing.T) {
			p := tempHosts(t, string(in.data))
			res, err := Apply(ctx, p, acme, []string{"example.gh", "Bücher.example:8000"})
			if err != nil || !res.Changed {
				t.Fatalf("Apply = %+v, %v", res, err)
			}
			if got := read(t, p); !strings.HasPrefix(got, strings.TrimSuffix(string(in.data), "\r")) {
				t.Fatalf("apply changed bytes before the block")
			}
			doc, _ := Parse([]byte(read(t, p)), acme)
			if !slices.Equal(doc.Names(), []string{"example.gh", "xn--bcher-kva.example"}) {
				t.Fatalf("names = %q", doc.Names())
			}
			before := id(t, p)
			time.Sleep(10 * time.Millisecond)
			res, err = Apply(ctx, p, acme, []string{"example.gh", "xn--bcher-kva.example"})
			if err != nil || res.Changed {
				t.Fatalf("second Apply = changed %v, %v", res.Changed, err)
			}
			if after := id(t, p); after != before {
				t.Fatalf("second Apply touched the file: %+v → %+v", before, after)
			}
			if _, err := RemoveBlock(ctx, p, acme); err != nil {
				t.Fatal(err)
			}
			if got := read(t, p); got != string(in.data) {
				t.Fatalf("apply→remove is not byte-identical")
			}
			before = id(t, p)
			time.Sleep(10 * time.Millisecond)
			if res, err := RemoveBlock(ctx, p, acme); err != nil || res.Changed {
				t.Fatalf("second remove = %v, %v", res.Changed, err)
			}
			if after := id(t, p); after != before {
				t.Fatalf("second remove touched the file")
			}
		})
	}
}

func TestSelectiveApplyRemove(t *testing.T) {
	ctx := context.Background()
	orig := "127.0.0.1 localhost\n"
	p := tempHosts(t, orig)
	steps := []struct {
		op    string
		names []string
		want  []string
	}{
		{"apply", []string{"a.test", "b.test"}, []string{"a.test", "b.test"}},
		{"apply", []string{"c.test"}, []string{"a.test", "b.test", "c.test"}},
		{"apply", []string{"b.test"}, []string{"a.test", "b.test", "c.test"}},
		{"remove", []string{"b.test"}, []string{"a.test", "c.test"}},
		{"remove", []string{"nothere.test"}, []string{"a.test", "c.test"}},
		{"remove", []string{"a.test", "c.test"}, nil},
	}
	for i, s := range steps {
		var err error
		if s.op == "apply" {
			_, err = Apply(ctx, p, acme, s.names)
		} else {
			_, err = Remove(ctx, p, acme, s.names)
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		doc, err := Parse([]byte(read(t, p)), acme)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(doc.Names(), s.want) {
			t.Fatalf("step %d %s %q: names %q, want %q", i, s.op, s.names, doc.Names(), s.want)
		}
	}
	if got := read(t, p); got != orig {
		t.Fatalf("emptied block did not disappear: %q", got)
	}
}

func TestInvalidNamesAreRefusedValidOnesApplied(t *testing.T) {
	p := tempHosts(t, "127.0.0.1 localhost\n")
	var names []string
	for _, n := range invalidNames() {
		names = append(names, n.in)
	}
	res, err := Apply(context.Background(), p, acme, append(names, "ok.test", "ok2.test:8000"))
	var ie *InvalidNameError
	if !errors.As(err, &ie) || len(ie.Names) != len(names) {
		t.Fatalf("error = %v, want an *InvalidNameError with %d names", err, len(names))
	}
	if res == nil || !res.Changed {
		t.Fatal("valid names were not applied")
	}
	want := "127.0.0.1 localhost\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 ok.test\n::1 ok.test\n127.0.0.1 ok2.test\n::1 ok2.test\n# siteplex end acme 0a1b2c3d\n"
	if got := read(t, p); got != want {
		t.Fatalf("file:\n%q\nwant\n%q", got, want)
	}
}

func TestKeepsModeAndOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	p := tempHosts(t, "127.0.0.1 localhost\n")
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	before := id(t, p)
	if _, err := Apply(context.Background(), p, acme, []string{"a.test"}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != 1234 || sys.Gid != 5678 {
		t.Fatalf("mode %v owner %d:%d, want -rw-r----- 1234:5678", st.Mode(), sys.Uid, sys.Gid)
	}
	if id(t, p).ino == before.ino {
		t.Fatal("file was not replaced by rename")
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".hosts.siteplex-*")); len(m) > 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestBackups(t *testing.T) {
	ctx := context.Background()
	orig := "127.0.0.1 localhost\n"
	p := tempHosts(t, orig)
	state := os.Getenv("XDG_STATE_HOME")
	var contents []string
	for i := range 8 {
		contents = append(contents, read(t, p))
		if _, err := Apply(ctx, p, acme, []string{fmt.Sprintf("s%d.test", i)}); err != nil {
			t.Fatal(err)
		}
	}
	dir := BackupFolder(filepath.Join(state, "siteplex"), p)
	if !strings.HasPrefix(dir, filepath.Join(state, "siteplex")+"/") {
		t.Fatalf("backup folder %s is not under $XDG_STATE_HOME/siteplex", dir)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "pristine")); err != nil || string(got) != orig {
		t.Fatalf("pristine = %q, %v; want the file before the first change", got, err)
	}
	list, err := Backups("", p)
	if err != nil || len(list) != DefaultKeep {
		t.Fatalf("Backups = %v, %v; want %d", list, err, DefaultKeep)
	}
	for i, b := range list {
		got, _ := os.ReadFile(b)
		if want := contents[len(contents)-DefaultKeep+i]; string(got) != want {
			t.Fatalf("backup %d = %q, want %q", i, got, want)
		}
	}
	// A no-op makes no backup.
	if _, err := Apply(ctx, p, acme, []string{"s1.test"}); err != nil {
		t.Fatal(err)
	}
	if l, _ := Backups("", p); !slices.Equal(l, list) {
		t.Fatal("a no-op apply made a backup")
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	p := tempHosts(t, "127.0.0.1 localhost\n")
	before := id(t, p)
	res, err := Update(context.Background(), p, Edit{Project: acme, Add: []string{"a.test"}}, Options{DryRun: true})
	if err != nil || !res.Changed {
		t.Fatalf("dry run = %+v, %v", res, err)
	}
	want := "--- a" + p + "\n+++ b" + p + "\n@@ -1 +1,5 @@\n 127.0.0.1 localhost\n+# siteplex begin acme 0a1b2c3d\n+127.0.0.1 a.test\n+::1 a.test\n+# siteplex end acme 0a1b2c3d\n"
	if d := res.Diff(); d != want {
		t.Fatalf("diff:\n%s\nwant\n%s", d, want)
	}
	if id(t, p) != before || read(t, p) != "127.0.0.1 localhost\n" {
		t.Fatal("dry run wrote the file")
	}
	if l, _ := Backups("", p); len(l) != 0 {
		t.Fatal("dry run made a backup")
	}
}

func TestMalformedBlockIsRefused(t *testing.T) {
	orig := "127.0.0.1 localhost\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n"
	p := tempHosts(t, orig)
	_, err := Apply(context.Background(), p, acme, []string{"b.test"})
	var me *MalformedError
	if !errors.As(err, &me) || me.Line != 2 {
		t.Fatalf("error = %v, want *MalformedError at line 2", err)
	}
	if read(t, p) != orig {
		t.Fatal("file changed")
	}
}

func TestSymlinkedFileIsEditedWhereItLives(t *testing.T) {
	p := tempHosts(t, "127.0.0.1 localhost\n")
	link := filepath.Join(filepath.Dir(p), "link")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(context.Background(), link, acme, []string{"a.test"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("symlink was replaced")
	}
	if !strings.Contains(read(t, p), "a.test") {
		t.Fatal("target not edited")
	}
}

// TestStaleTempFilesAreRemoved: a killed writer's temporary file goes
// with the next command, whether that one changes the file or not.
func TestStaleTempFilesAreRemoved(t *testing.T) {
	block := "127.0.0.1 localhost\n# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n::1 a.test\n# siteplex end acme 0a1b2c3d\n"
	for _, tt := range []struct {
		name, before string
		changed      bool
	}{
		{"a change", "127.0.0.1 localhost\n", true},
		{"a no-op", block, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := tempHosts(t, tt.before)
			stale := filepath.Join(filepath.Dir(p), ".hosts.siteplex-123456")
			staleBackup := filepath.Join(BackupFolder("", p), "hosts.20260101T000000.000000000Z.tmp")
			os.MkdirAll(filepath.Dir(staleBackup), 0o700)
			for _, f := range []string{stale, staleBackup} {
				if err := os.WriteFile(f, []byte("half"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := id(t, p)
			res, err := Apply(context.Background(), p, acme, []string{"a.test"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Changed != tt.changed || (id(t, p) == before) == tt.changed {
				t.Fatalf("changed = %v (file replaced: %v), want %v", res.Changed, id(t, p) != before, tt.changed)
			}
			for _, f := range []string{stale, staleBackup} {
				if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("stale temporary file %s kept", f)
				}
			}
			if got := read(t, p); got != block {
				t.Fatalf("file:\n%q\nwant\n%q", got, block)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	p := tempHosts(t, "127.0.0.1 localhost\n192.168.1.9 example.gh www.example.gh # staging\n# 10.0.0.1 example.gh\n")
	if _, err := Apply(context.Background(), p, acme, []string{"example.gh", "old.test"}); err != nil {
		t.Fatal(err)
	}
	rep, err := Status(context.Background(), p, acme, []string{"Example.GH", "de.localhost", "bad#name"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.System || !rep.Block || rep.Line != 4 {
		t.Fatalf("report %+v", rep)
	}
	if n := rep.Names[0]; n.Name != "example.gh" || !n.InBlock || !slices.Equal(n.Elsewhere, []int{2}) || n.Resolved != nil {
		t.Fatalf("example.gh: %+v (want in block, also on line 2, not resolved)", n)
	}
	if n := rep.Names[1]; n.InBlock || len(n.Elsewhere) != 0 {
		t.Fatalf("de.localhost: %+v", n)
	}
	if n := rep.Names[2]; n.Error == "" {
		t.Fatalf("bad#name: %+v, want an error", n)
	}
	if !slices.Equal(rep.Extra, []string{"old.test"}) {
		t.Fatalf("Extra = %q", rep.Extra)
	}
}

func TestMissingFileIsCreatedOnApply(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hosts")
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	if res, err := Remove(context.Background(), p, acme, []string{"a.test"}); err != nil || res.Changed {
		t.Fatalf("Remove on a missing file = %v, %v", res, err)
	}
	if _, err := Apply(context.Background(), p, acme, []string{"a.test"}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); got != "# siteplex begin acme 0a1b2c3d\n127.0.0.1 a.test\n::1 a.test\n# siteplex end acme 0a1b2c3d\n" {
		t.Fatalf("got %q", got)
	}
}

func TestLockWaitsForContext(t *testing.T) {
	p := tempHosts(t, "127.0.0.1 localhost\n")
	f, err := safefile.Lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Apply(ctx, p, acme, []string{"a.test"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply while locked = %v, want deadline exceeded", err)
	}
	if !bytes.Equal([]byte(read(t, p)), []byte("127.0.0.1 localhost\n")) {
		t.Fatal("file changed while locked")
	}
}

func TestDiffOfLargeChangesIsCheap(t *testing.T) {
	data := []byte(megabyte())
	doc, err := Parse(data, acme)
	if err != nil {
		t.Fatal(err)
	}
	after, err := doc.Render(benchNames())
	if err != nil {
		t.Fatal(err)
	}
	d := Diff("/etc/hosts", data, after)
	if got := strings.Count(d, "\n+127.0.0.1 site"); got != 10000 {
		t.Fatalf("diff adds %d 127.0.0.1 lines, want 10000", got)
	}
	// Removing one site in the middle of a big block is a two-line diff.
	doc2, _ := Parse(after, acme)
	names := doc2.Names()
	smaller, _ := doc2.Render(append(names[:5000:5000], names[5001:]...))
	d = Diff("/etc/hosts", after, smaller)
	if strings.Count(d, "\n-") != 2 || strings.Count(d, "\n+") != 1 { // "+++ b/etc/hosts" is the one '+'
		t.Fatalf("diff:\n%s", d)
	}
}

// TestForeignLinesAreMovedOut: lines siteplex did not write, found inside
// its block, come out of it unchanged (issue 15: a NAS entry became
// 127.0.0.1 and lost its comment), and the result says which.
func TestForeignLinesAreMovedOut(t *testing.T) {
	orig := "127.0.0.1 localhost\r\n# siteplex begin acme 0a1b2c3d\r\n127.0.0.1 a.test\r\n::1 a.test\r\n192.168.1.50 nas.internal # NAS\r\n# siteplex end acme 0a1b2c3d\r\n"
	p := tempHosts(t, orig)
	res, err := Apply(context.Background(), p, acme, []string{"b.test"})
	if err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1 localhost\r\n192.168.1.50 nas.internal # NAS\r\n# siteplex begin acme 0a1b2c3d\r\n127.0.0.1 a.test\r\n::1 a.test\r\n127.0.0.1 b.test\r\n::1 b.test\r\n# siteplex end acme 0a1b2c3d\r\n"
	if got := read(t, p); got != want {
		t.Fatalf("file:\n%q\nwant\n%q", got, want)
	}
	if len(res.MovedOut) != 1 || res.MovedOut[0] != (ForeignLine{Line: 5, Text: "192.168.1.50 nas.internal # NAS"}) {
		t.Fatalf("MovedOut = %+v", res.MovedOut)
	}
	rep, err := Status(context.Background(), p, acme, []string{"nas.internal"})
	if err != nil || len(rep.Foreign) != 0 || !slices.Equal(rep.Names[0].Elsewhere, []int{2}) {
		t.Fatalf("status after the move: %+v, %v", rep, err)
	}
	// Removing the block keeps the moved line where it is.
	if _, err := RemoveBlock(context.Background(), p, acme); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); got != "127.0.0.1 localhost\r\n192.168.1.50 nas.internal # NAS\r\n" {
		t.Fatalf("after remove: %q", got)
	}
}

// TestSameNamedProjects: two projects whose folders have the same name
// keep one block each; removing in one leaves the other's names alone
// (issue 15).
func TestSameNamedProjects(t *testing.T) {
	ctx := context.Background()
	p := tempHosts(t, "127.0.0.1 localhost\n")
	one, two := KeyFor("shop", "/srv/clients/a/shop"), KeyFor("shop", "/srv/clients/b/shop")
	if _, err := Apply(ctx, p, one, []string{"one.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, p, two, []string{"two.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveBlock(ctx, p, one); err != nil {
		t.Fatal(err)
	}
	doc, err := Parse([]byte(read(t, p)), two)
	if err != nil || !slices.Equal(doc.Names(), []string{"two.test"}) {
		t.Fatalf("the other project's block after remove: %v, %v\n%s", doc.Names(), err, read(t, p))
	}
	if strings.Contains(read(t, p), "one.test") {
		t.Fatal("the first project's names survived its remove")
	}
}

// TestOldMarkerIsAdopted: a block written before markers had a hash
// becomes the project's, and a renamed project takes over the block of its
// root: nothing is orphaned.
func TestOldMarkerIsAdopted(t *testing.T) {
	ctx := context.Background()
	p := tempHosts(t, "127.0.0.1 localhost\n# siteplex begin acme\n127.0.0.1 a.test\n::1 a.test\n# siteplex end acme\n")
	res, err := Apply(ctx, p, acme, []string{"a.test"})
	if err != nil || !res.Changed || !res.Adopted {
		t.Fatalf("Apply = %+v, %v; want the block adopted", res, err)
	}
	renamed := Key{Name: "acme-portal", Hash: acme.Hash}
	if _, err := Apply(ctx, p, renamed, []string{"b.test"}); err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1 localhost\n# siteplex begin acme-portal 0a1b2c3d\n127.0.0.1 a.test\n::1 a.test\n127.0.0.1 b.test\n::1 b.test\n# siteplex end acme-portal 0a1b2c3d\n"
	if got := read(t, p); got != want {
		t.Fatalf("file:\n%q\nwant\n%q", got, want)
	}
}

// TestBackupFolderIsPrivate: with HOME unset the backups never go to a
// shared temp folder, and a symlink planted where the backup folder
// should be is refused before anything is written (issue 15: root's
// rotation deleted an unrelated hosts.* file through one).
func TestBackupFolderIsPrivate(t *testing.T) {
	p := tempHosts(t, "127.0.0.1 localhost\n")
	t.Setenv("XDG_STATE_HOME", "")
	os.Unsetenv("XDG_STATE_HOME")
	t.Setenv("HOME", "")
	os.Unsetenv("HOME")
	if dir, err := StateDir(); err == nil && strings.HasPrefix(dir, os.TempDir()) {
		t.Fatalf("StateDir without HOME = %s, a shared folder", dir)
	}

	// A planted symlink: the backup folder points at someone else's files.
	base := filepath.Join(t.TempDir(), "state")
	victims := t.TempDir()
	for i := range 8 {
		os.WriteFile(filepath.Join(victims, fmt.Sprintf("hosts.2000010%dT000000.000000000Z", i)), []byte("not siteplex's"), 0o644)
	}
	os.MkdirAll(filepath.Join(base, "hosts-backups"), 0o700)
	if err := os.Symlink(victims, BackupFolder(base, p)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := Update(context.Background(), p, Edit{Project: acme, Add: []string{fmt.Sprintf("s%d.test", i)}}, Options{BackupDir: base})
		var ue *safefile.UnsafeDirError
		if !errors.As(err, &ue) {
			t.Fatalf("apply through a planted symlink: %v, want an *UnsafeDirError", err)
		}
	}
	if got := read(t, p); got != "127.0.0.1 localhost\n" {
		t.Fatal("the hosts file changed although the backups could not be made")
	}
	if ents, _ := os.ReadDir(victims); len(ents) != 8 {
		t.Fatalf("the planted folder has %d files, want the 8 it had", len(ents))
	}
}

func TestRestore(t *testing.T) {
	ctx := context.Background()
	orig := "127.0.0.1 localhost\n"
	p := tempHosts(t, orig)
	Apply(ctx, p, acme, []string{"a.test"})
	Apply(ctx, p, acme, []string{"b.test"})
	list, err := Backups("", p)
	if err != nil || len(list) != 2 {
		t.Fatalf("Backups = %v, %v", list, err)
	}
	res, err := Restore(ctx, p, filepath.Base(list[1]), Options{})
	if err != nil || !res.Changed || !strings.Contains(read(t, p), "a.test") || strings.Contains(read(t, p), "b.test") {
		t.Fatalf("restore of the last backup: %v\n%s", err, read(t, p))
	}
	if _, err := Restore(ctx, p, "pristine", Options{}); err != nil || read(t, p) != orig {
		t.Fatalf("restore pristine: %v", err)
	}
	if _, err := Restore(ctx, p, "/etc/passwd", Options{}); err == nil || read(t, p) != orig {
		t.Fatalf("restoring a file that is not a backup: %v", err)
	}
}
