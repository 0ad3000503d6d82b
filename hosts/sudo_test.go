package hosts

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"sudo", "siteplex", "hosts", "apply", "gh"}, "sudo siteplex hosts apply gh"},
		{[]string{"--hosts-file", "/tmp/my hosts"}, "--hosts-file '/tmp/my hosts'"},
		{[]string{"--db", "postgres://u:p@127.0.0.1:5432/db?sslmode=disable"}, "--db 'postgres://u:p@127.0.0.1:5432/db?sslmode=disable'"},
		{[]string{"it's"}, `'it'\''s'`},
		{[]string{""}, "''"},
	}
	for _, tt := range tests {
		if got := Quote(tt.argv); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.argv, got, tt.want)
		}
	}
}

func TestSudoArgv(t *testing.T) {
	argv := SudoArgv("hosts", "apply", "gh")
	exe, _ := os.Executable()
	if argv[0] != "sudo" || (argv[1] != "siteplex" && !strings.HasSuffix(argv[1], "/"+baseName(exe))) || strings.Join(argv[2:], " ") != "hosts apply gh" {
		t.Fatalf("SudoArgv = %q", argv)
	}
}

func baseName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func TestPermissionErrorMessage(t *testing.T) {
	err := error(&PermissionError{Path: "/etc/hosts", Command: "sudo siteplex hosts apply gh",
		Err: &os.PathError{Op: "open", Path: "/etc/hosts", Err: os.ErrPermission}})
	want := "cannot write /etc/hosts: permission denied\nIt needs root; run:\n  sudo siteplex hosts apply gh"
	if err.Error() != want {
		t.Fatalf("message:\n%s\nwant\n%s", err, want)
	}
	if !IsPermission(err) || !errors.Is(err, os.ErrPermission) {
		t.Fatal("not recognised as a permission error")
	}
}
