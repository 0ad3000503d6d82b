package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/hosts"
	"github.com/siteplex/siteplex/internal/testenv"
)

// TestUIHostsSudoInTmux is the real hand-off to sudo: `siteplex ui` runs
// as uid 65534 in a tmux terminal on a project whose hosts file only root
// may write; `h` must suspend the UI, run `sudo siteplex hosts apply --host example.gh …`
// (a real sudo, allowed by a sudoers file bind-mounted over /etc/sudoers
// in a private mount namespace — the machine's own is never touched),
// write the block as root and come back to a UI that shows it; `h` again
// removes it, leaving the file as it was.
func TestUIHostsSudoInTmux(t *testing.T) {
	for _, tool := range []string{"tmux", "sudo", "unshare", "setpriv", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s is not installed (apt-get install tmux sudo util-linux mount): the sudo hand-off test needs it", tool)
		}
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to bind-mount a sudoers file in a private mount namespace and run the UI as uid 65534")
	}
	bin := buildSiteplex(t)

	// The project: readable and writable by uid 65534 (the engine keeps
	// .siteplex/ there). The hosts file: in a folder only root may write.
	root := worldReadableDir(t)
	if err := os.Chmod(root, 0o777); err != nil {
		t.Fatal(err)
	}
	toml := "name = \"sudoproj\"\n[process]\ncommand = [\"" + bin + "\", \"demo-site\", \"--port\", \"{port}\"]\n" +
		"[sites.gh]\nid = 2\ndomain = \"example.gh\"\n"
	if err := os.WriteFile(filepath.Join(root, "siteplex.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	hostsDir := worldReadableDir(t)
	hf := filepath.Join(hostsDir, "hosts")
	orig := "127.0.0.1\tlocalhost\n# the user's own line\n10.0.0.1 intranet\n"
	if err := os.WriteFile(hf, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	// Backups go to a state folder of the test's, not root's home.
	state := worldReadableDir(t)
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	private := t.TempDir()
	sudoers := filepath.Join(private, "sudoers")
	rules := "Defaults env_reset\nDefaults env_keep += \"XDG_STATE_HOME\"\nDefaults !lecture\n" +
		"root ALL=(ALL:ALL) ALL\nnobody ALL=(root) NOPASSWD: " + bin + "\n"
	if err := os.WriteFile(sudoers, []byte(rules), 0o440); err != nil {
		t.Fatal(err)
	}

	s := &tmuxSession{t: t, socket: fmt.Sprintf("siteplex-sudo-test-%d", os.Getpid())}
	exitFile := filepath.Join(private, "exit")
	ui := strings.Join([]string{"exec", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"env", "-u", "NO_COLOR", "TERM=xterm-256color", "HOME=/nonexistent", "XDG_STATE_HOME=" + state,
		bin, "ui", "--project", root, "--hosts-file", hf, "--listen", "127.0.0.1:0"}, " ")
	script := fmt.Sprintf("unshare -m sh -c 'mount --bind %s /etc/sudoers && %s'; echo $? > %s", sudoers, ui, exitFile)
	if out, err := s.tmux("-f", "/dev/null", "new-session", "-d", "-s", "demo", "-x", "120", "-y", "30",
		"sh", "-c", script); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = s.tmux("kill-server") })

	read := func() string {
		b, err := os.ReadFile(hf)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// ID SLUG NAME DOMAIN LOCAL HOSTS …
	row := regexp.MustCompile(`›\s*2\s+gh\s+\S+\s+\S+\s+\S+\s+(\S)\s`)
	if m := s.waitScreen("gh, not in the hosts file", row); m[1] != "·" {
		t.Fatalf("hosts glyph %q before any change, want ·; screen:\n%s", m[1], s.screen())
	}

	s.keys("h")
	s.waitScreen("the sudo apply done", regexp.MustCompile(`done: sudo \S+ hosts apply --project`))
	key := hosts.KeyFor("sudoproj", root)
	want := orig + hosts.BeginMarker(key) + "\n127.0.0.1 example.gh\n::1 example.gh\n" + hosts.EndMarker(key) + "\n"
	if got := read(); got != want {
		t.Fatalf("hosts file after h:\n%q\nwant\n%q", got, want)
	}
	s.waitScreen("gh in the hosts file", regexp.MustCompile(`›\s*2\s+gh\s+\S+\s+\S+\s+\S+\s+✓\s`))
	if st, err := os.Stat(hf); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("hosts file mode after the change: %v, %v", st.Mode(), err)
	}
	backups, _ := filepath.Glob(filepath.Join(state, "siteplex", "*"))
	if len(backups) == 0 {
		t.Errorf("no backup in XDG_STATE_HOME %s", state)
	}

	s.keys("h")
	s.waitScreen("the sudo remove done", regexp.MustCompile(`done: sudo \S+ hosts remove --project`))
	if got := read(); got != orig {
		t.Fatalf("hosts file after h, h:\n%q\nwant the original\n%q", got, orig)
	}
	s.waitScreen("gh out of the hosts file", regexp.MustCompile(`›\s*2\s+gh\s+\S+\s+\S+\s+\S+\s+·\s`))

	s.keys("q")
	s.waitExit("siteplex ui", exitFile)
}
