package supervisor

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
	"github.com/siteplex/siteplex/internal/testenv"
)

func TestLocalRunnerStopEscalatesToSIGKILL(t *testing.T) {
	r := LocalRunner()
	defer r.(*localRunner).Close()
	var out testenv.Buffer
	p, err := r.Start(context.Background(), ProcessSpec{
		Argv: svChildCmd(t, "sleep"), Env: os.Environ(), Dir: t.TempDir(), Port: 1, Stdout: &out, Stderr: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.PID() <= 0 || p.Addr() != "127.0.0.1:1" {
		t.Errorf("pid %d addr %s", p.PID(), p.Addr())
	}
	svWaitFor(t, 10*time.Second, "the child to ignore SIGTERM", func() bool {
		return strings.Contains(out.String(), "ignoring SIGTERM")
	})
	start := time.Now()
	if err := p.Stop(context.Background(), 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	code, err := p.Wait()
	if err != nil || code != 137 {
		t.Errorf("exit %d %v, want 137 (SIGKILL after the grace period)", code, err)
	}
	if took < 500*time.Millisecond {
		t.Errorf("Stop returned after %s, before the grace period", took)
	}
	if proc.Alive(p.PID()) {
		t.Errorf("pid %d alive", p.PID())
	}
}

func TestLocalRunnerErrors(t *testing.T) {
	r := LocalRunner()
	defer r.(*localRunner).Close()
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"empty", nil, "empty command"},
		{"missing program", []string{"/nonexistent/python", "manage.py"}, "/nonexistent/python"},
		{"not on PATH", []string{"siteplex-no-such-program"}, "executable file not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Start(context.Background(), ProcessSpec{Argv: tt.argv, Dir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
