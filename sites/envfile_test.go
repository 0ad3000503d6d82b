package sites

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func ptr(s string) *string { return &s }

func TestSetEnvKey(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		value   *string // nil = remove
		want    string
		removed int
		changed bool
	}{
		{"append to empty", "", ptr("2"), "SITE_ID=2\n", 0, true},
		{"append keeps comments and blanks",
			"# local settings\n\nDEBUG=True\n", ptr("2"),
			"# local settings\n\nDEBUG=True\nSITE_ID=2\n", 0, true},
		{"replace in place",
			"A=1\nSITE_ID=1\nB=2\n", ptr("3"),
			"A=1\nSITE_ID=3\nB=2\n", 0, true},
		{"export kept",
			"export A=1\nexport SITE_ID=1\n", ptr("4"),
			"export A=1\nexport SITE_ID=4\n", 0, true},
		{"double quotes kept",
			"SITE_ID=\"1\"\nX='a b'\n", ptr("5"),
			"SITE_ID=\"5\"\nX='a b'\n", 0, true},
		{"single quotes kept",
			"SITE_ID='1'\n", ptr("6"),
			"SITE_ID='6'\n", 0, true},
		{"inline comment kept",
			"SITE_ID=1  # forced for dev\n", ptr("7"),
			"SITE_ID=7  # forced for dev\n", 0, true},
		{"quoted value with comment",
			"SITE_ID=\"1\" # note\n", ptr("8"),
			"SITE_ID=\"8\" # note\n", 0, true},
		{"spaces around = kept",
			"  SITE_ID = 1\n", ptr("9"),
			"  SITE_ID = 9\n", 0, true},
		{"CRLF kept",
			"A=1\r\nSITE_ID=1\r\n# c\r\n", ptr("2"),
			"A=1\r\nSITE_ID=2\r\n# c\r\n", 0, true},
		{"CRLF append",
			"A=1\r\nB=2\r\n", ptr("2"),
			"A=1\r\nB=2\r\nSITE_ID=2\r\n", 0, true},
		{"no final newline, replace",
			"A=1\nSITE_ID=1", ptr("2"),
			"A=1\nSITE_ID=2", 0, true},
		{"no final newline, append",
			"A=1", ptr("2"),
			"A=1\nSITE_ID=2", 0, true},
		{"CRLF no final newline, append",
			"A=1\r\nB=2", ptr("2"),
			"A=1\r\nB=2\r\nSITE_ID=2", 0, true},
		{"duplicates: first replaced, later removed",
			"SITE_ID=1\nA=1\nexport SITE_ID=2\nSITE_ID=3\nB=2\n", ptr("4"),
			"SITE_ID=4\nA=1\nB=2\n", 2, true},
		{"commented SITE_ID left alone",
			"# SITE_ID=1\nSITE_ID=2\n", ptr("3"),
			"# SITE_ID=1\nSITE_ID=3\n", 0, true},
		{"other keys with the same prefix left alone",
			"SITE_ID_EXTRA=1\nMY_SITE_ID=2\n", ptr("3"),
			"SITE_ID_EXTRA=1\nMY_SITE_ID=2\nSITE_ID=3\n", 0, true},
		{"same value: no change",
			"SITE_ID=2\n", ptr("2"),
			"SITE_ID=2\n", 0, false},
		{"tabs and odd lines kept",
			"\tA=1\nnot a line\nSITE_ID=1\n", ptr("2"),
			"\tA=1\nnot a line\nSITE_ID=2\n", 0, true},
		{"BOM kept",
			"\ufeffSITE_ID=1\n", ptr("2"),
			"\ufeffSITE_ID=2\n", 0, true},
		{"remove",
			"A=1\nSITE_ID=2\nB=3\n", nil,
			"A=1\nB=3\n", 1, true},
		{"remove every duplicate",
			"SITE_ID=1\nA=1\nexport SITE_ID=2\n", nil,
			"A=1\n", 2, true},
		{"remove last line without final newline",
			"A=1\nSITE_ID=2", nil,
			"A=1", 1, true},
		{"remove CRLF last line without final newline",
			"A=1\r\nSITE_ID=2", nil,
			"A=1", 1, true},
		{"remove when absent",
			"A=1\n", nil,
			"A=1\n", 0, false},
		{"value needing quotes",
			"", ptr("a b#c"),
			"SITE_ID=\"a b#c\"\n", 0, true},
		// Issue 15: SITE_ID= inside another variable's multi-line value
		// (a certificate) is part of that value, not a binding.
		{"SITE_ID= inside a double-quoted multi-line value",
			"CERT=\"-----BEGIN-----\nSITE_ID=9\n-----END-----\"\nSITE_ID=1\n", ptr("2"),
			"CERT=\"-----BEGIN-----\nSITE_ID=9\n-----END-----\"\nSITE_ID=2\n", 0, true},
		{"SITE_ID= inside a single-quoted multi-line value, clear",
			"KEY='line one\nSITE_ID=9\n'\n", nil,
			"KEY='line one\nSITE_ID=9\n'\n", 0, false},
		{"SITE_ID= after an escaped quote, still inside the value",
			"A=\"say \\\"hi\nSITE_ID=9\n\"\n", ptr("3"),
			"A=\"say \\\"hi\nSITE_ID=9\n\"\nSITE_ID=3\n", 0, true},
		{"export with a tab",
			"export\tSITE_ID=1\n", ptr("5"),
			"export\tSITE_ID=5\n", 0, true},
		{"quoted key",
			"'SITE_ID'=1\n", ptr("5"),
			"'SITE_ID'=5\n", 0, true},
		{"key without a value",
			"SITE_ID # set later\n", ptr("5"),
			"SITE_ID=5 # set later\n", 0, true},
		{"a multi-line SITE_ID value is replaced whole",
			"SITE_ID=\"1\n2\"\nA=1\n", ptr("3"),
			"SITE_ID=\"3\"\nA=1\n", 0, true},
		{"BOM kept when clearing",
			"\ufeffSITE_ID=1\nA=1\n", nil,
			"\ufeffA=1\n", 1, true},
		{"BOM kept when the only line goes",
			"\ufeffSITE_ID=1", nil,
			"\ufeff", 1, true},
		{"lone CR line endings",
			"A=1\rSITE_ID=1\rB=2\r", ptr("2"),
			"A=1\rSITE_ID=2\rB=2\r", 0, true},
		{"lone CR append",
			"A=1\r", ptr("2"),
			"A=1\rSITE_ID=2\r", 0, true},
		{"indented line with blank lines before, clear",
			"A=1\n\n   SITE_ID=1   # x\nB=2\n", nil,
			"A=1\n\nB=2\n", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ed, err := SetEnvKey([]byte(tt.raw), "SITE_ID", tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if string(ed.Content) != tt.want {
				t.Errorf("content:\n got %q\nwant %q", ed.Content, tt.want)
			}
			if ed.Removed != tt.removed || ed.Changed != tt.changed {
				t.Errorf("removed=%d changed=%v, want removed=%d changed=%v", ed.Removed, ed.Changed, tt.removed, tt.changed)
			}
			// What was written reads back as the value.
			dir := t.TempDir()
			p := filepath.Join(dir, ".env-local")
			if err := os.WriteFile(p, ed.Content, 0o644); err != nil {
				t.Fatal(err)
			}
			ef, err := ReadEnvFile(p)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := ef.Values["SITE_ID"]
			switch {
			case tt.value == nil && ok:
				t.Errorf("SITE_ID still reads as %q after removal", got)
			case tt.value != nil && got != *tt.value:
				t.Errorf("SITE_ID reads back as %q, want %q", got, *tt.value)
			}
		})
	}
}

func TestSaveEnvKey(t *testing.T) {
	ctx := context.Background()
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Run("keeps mode, writes nothing when unchanged", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), ".env-local")
		if err := os.WriteFile(p, []byte("A=1\r\nSITE_ID=1"), 0o600); err != nil {
			t.Fatal(err)
		}
		ed, err := SaveEnvKey(ctx, p, "SITE_ID", ptr("2"))
		if err != nil || !ed.Changed {
			t.Fatalf("SaveEnvKey: %v changed=%v", err, ed.Changed)
		}
		b, _ := os.ReadFile(p)
		if string(b) != "A=1\r\nSITE_ID=2" {
			t.Errorf("file = %q", b)
		}
		st, _ := os.Stat(p)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode = %v, want 0600", st.Mode().Perm())
		}
		before := st.ModTime()
		ino := inode(t, p)
		ed, err = SaveEnvKey(ctx, p, "SITE_ID", ptr("2"))
		if err != nil || ed.Changed {
			t.Fatalf("second SaveEnvKey: %v changed=%v", err, ed.Changed)
		}
		st, _ = os.Stat(p)
		if !st.ModTime().Equal(before) || inode(t, p) != ino {
			t.Error("an unchanged file was rewritten")
		}
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*siteplex*"))
		if len(left) > 0 {
			t.Errorf("temporary files left behind: %v", left)
		}
	})
	t.Run("missing file is created", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), ".env-local")
		if _, err := SaveEnvKey(ctx, p, "SITE_ID", ptr("3")); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != "SITE_ID=3\n" {
			t.Fatalf("file = %q, %v", b, err)
		}
		st, _ := os.Stat(p)
		if st.Mode().Perm() != 0o644 {
			t.Errorf("mode = %v, want 0644", st.Mode().Perm())
		}
	})
	t.Run("removing from a missing file creates nothing", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), ".env-local")
		ed, err := SaveEnvKey(ctx, p, "SITE_ID", nil)
		if err != nil || ed.Changed {
			t.Fatalf("%v changed=%v", err, ed.Changed)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("file was created: %v", err)
		}
	})
	t.Run("symlink is followed, not replaced", func(t *testing.T) {
		dir := t.TempDir()
		real := filepath.Join(dir, "shared.env")
		if err := os.WriteFile(real, []byte("SITE_ID=1\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, ".env-local")
		if err := os.Symlink("shared.env", link); err != nil {
			t.Fatal(err)
		}
		if _, err := SaveEnvKey(ctx, link, "SITE_ID", ptr("2")); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
			t.Error("the symlink was replaced by a file")
		}
		b, _ := os.ReadFile(real)
		if string(b) != "SITE_ID=2\n" {
			t.Errorf("target = %q", b)
		}
	})
	t.Run("dangling symlink chain: refused, no link replaced", func(t *testing.T) {
		dir := t.TempDir()
		link := filepath.Join(dir, ".env-local")
		os.Symlink("middle", link)
		os.Symlink("shared.env", filepath.Join(dir, "middle"))
		_, err := SaveEnvKey(ctx, link, "SITE_ID", ptr("4"))
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("err = %v, want a refusal", err)
		}
		for _, l := range []string{link, filepath.Join(dir, "middle")} {
			if fi, _ := os.Lstat(l); fi == nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("%s was replaced by a file", l)
			}
		}
		if _, err := os.Lstat(filepath.Join(dir, "shared.env")); !os.IsNotExist(err) {
			t.Error("the link's target was created")
		}
	})
	t.Run("read-only folder: error, file intact", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root ignores folder permissions; covered by the non-root CLI test")
		}
		dir := t.TempDir()
		p := filepath.Join(dir, ".env-local")
		os.WriteFile(p, []byte("SITE_ID=1\n"), 0o644)
		os.Chmod(dir, 0o555)
		defer os.Chmod(dir, 0o755)
		if _, err := SaveEnvKey(ctx, p, "SITE_ID", ptr("2")); err == nil || !strings.Contains(err.Error(), "env file") {
			t.Fatalf("err = %v", err)
		}
		b, _ := os.ReadFile(p)
		if string(b) != "SITE_ID=1\n" {
			t.Errorf("file changed: %q", b)
		}
	})
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// TestSetEnvKeyRefusesAnEditThatChangesOtherKeys: a value that needs
// quotes, appended after an unterminated quote, would close it and
// change how the file reads; the edit is refused.
func TestSetEnvKeyRefusesAnEditThatChangesOtherKeys(t *testing.T) {
	_, err := SetEnvKey([]byte("A=\"x\nB=1\n"), "SITE_ID", ptr("a b"))
	if _, ok := err.(*UnsafeEnvEditError); !ok {
		t.Fatalf("err = %v, want *UnsafeEnvEditError", err)
	}
	// A plain value is fine there: it closes nothing.
	if ed, err := SetEnvKey([]byte("A=\"x\nB=1\n"), "SITE_ID", ptr("2")); err != nil || string(ed.Content) != "A=\"x\nB=1\nSITE_ID=2\n" {
		t.Fatalf("plain value: %q, %v", ed.Content, err)
	}
}
