package hosts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Executable is how to name this siteplex binary in a command run through
// sudo: "siteplex" when sudo would find this very binary by that name on
// its secure_path, else its absolute path.
func Executable() string {
	exe, err := os.Executable()
	if err != nil {
		return "siteplex"
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	// The folders of sudo's default secure_path.
	for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		cand := filepath.Join(dir, "siteplex")
		if resolved, err := filepath.EvalSymlinks(cand); err == nil && resolved == exe {
			if p, err := exec.LookPath("siteplex"); err == nil {
				if r2, err := filepath.EvalSymlinks(p); err == nil && r2 == exe {
					return "siteplex"
				}
			}
		}
	}
	return exe
}

// SudoArgv is the argv that runs siteplex with args as root:
// sudo, Executable(), args... The TUI runs it with tea.ExecProcess.
func SudoArgv(args ...string) []string {
	return append([]string{"sudo", Executable()}, args...)
}

// Quote renders argv as one shell command line, quoting where needed, for
// people to copy.
func Quote(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = quoteArg(a)
	}
	return strings.Join(parts, " ")
}

func quoteArg(a string) string {
	if a == "" {
		return "''"
	}
	safe := true
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@+%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}
