package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestWatcherPyChangesDebouncedAndIgnoredDirs(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"app", ".git", "node_modules/pkg", "app/__pycache__", ".venv/lib", "myenv", "media", ".siteplex/logs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A virtualenv under any name is recognised by its pyvenv.cfg.
	if err := os.WriteFile(filepath.Join(root, "myenv", "pyvenv.cfg"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(rel string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x = 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app/views.py")

	got := make(chan []string, 10)
	w, err := newWatcher(root, 100*time.Millisecond, func(p []string) { got <- p }, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()

	expect := func(want []string) {
		t.Helper()
		select {
		case p := <-got:
			if !slices.Equal(p, want) {
				t.Errorf("changed %q, want %q", p, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no change reported, want %q", want)
		}
	}
	expectNone := func(what string) {
		t.Helper()
		select {
		case p := <-got:
			t.Errorf("%s reported %q", what, p)
		case <-time.After(400 * time.Millisecond):
		}
	}

	tests := []struct {
		name string
		do   func()
		want []string // nil: nothing reported
	}{
		{"touch an existing file", func() {
			now := time.Now()
			_ = os.Chtimes(filepath.Join(root, "app/views.py"), now, now)
		}, []string{"app/views.py"}},
		{"a burst of writes is one change", func() {
			for range 5 {
				write("app/models.py")
				write("app/urls.py")
				time.Sleep(10 * time.Millisecond)
			}
		}, []string{"app/models.py", "app/urls.py"}},
		{"ignored folders and other files", func() {
			write(".git/hook.py")
			write("node_modules/pkg/x.py")
			write("app/__pycache__/views.cpython-311.py")
			write(".venv/lib/site.py")
			write("myenv/site.py")
			write("media/upload.py")
			write(".siteplex/logs/x.py")
			write("app/template.html")
			write("app/.#views.py")
		}, nil},
		{"a new folder is watched", func() {
			write("app/sub/new.py")
		}, []string{"app/sub/new.py"}},
		{"a new file in the new folder", func() {
			time.Sleep(100 * time.Millisecond)
			write("app/sub/other.py")
		}, []string{"app/sub/other.py"}},
		{"removing a file", func() {
			_ = os.Remove(filepath.Join(root, "app/urls.py"))
		}, []string{"app/urls.py"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.do()
			if tt.want == nil {
				expectNone(tt.name)
				return
			}
			expect(tt.want)
		})
	}
	cancel()
	<-done
}

func TestSkipDir(t *testing.T) {
	root := t.TempDir()
	venv := filepath.Join(root, "env")
	_ = os.MkdirAll(venv, 0o755)
	_ = os.WriteFile(filepath.Join(venv, "pyvenv.cfg"), nil, 0o644)
	tests := map[string]bool{
		filepath.Join(root, ".git"):         true,
		filepath.Join(root, "node_modules"): true,
		filepath.Join(root, "__pycache__"):  true,
		filepath.Join(root, "venv"):         true,
		filepath.Join(root, ".venv"):        true,
		filepath.Join(root, "media"):        true,
		filepath.Join(root, ".siteplex"):    true,
		venv:                                true,
		filepath.Join(root, "app"):          false,
		filepath.Join(root, "static"):       false,
	}
	for p, want := range tests {
		if got := skipDir(p); got != want {
			t.Errorf("skipDir(%s) = %v, want %v", p, got, want)
		}
	}
}
