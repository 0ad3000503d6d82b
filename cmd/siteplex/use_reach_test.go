package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// TestUseSaysWhenRunserverIgnoresIt: `use` writes SITE_ID and exits 0, and
// says on stderr when a `manage.py runserver` started by hand would not
// see it: SITE_ID hard-coded (Mezzanine's template), or read by
// django-environ from another file (shop/.env); not when the settings load
// the env file siteplex writes.
func TestUseSaysWhenRunserverIgnoresIt(t *testing.T) {
	testenv.NeedPython(t, "django", "environ")
	readEnv := func(file string) string {
		return "\nimport environ\nenv = environ.Env()\nenviron.Env.read_env(str(BASE_DIR / " + file + "))\nSITE_ID = env.int('SITE_ID', default=1)\n"
	}
	tests := []struct {
		name, fixture, settings, settingsFile string
		note                                  string // "" = no note
	}{
		{name: "hard-coded", fixture: "djfixed",
			note: "SITE_ID=2 in .env-local reaches only siteplex: SITE_ID = 1 is fixed in mezzshape.settings: a `manage.py runserver` started by hand keeps SITE_ID 1; siteplex's engine (serve, the UI) serves site 2 on localhost and gives its processes SITE_ID=2 through the overlay"},
		{name: "read_env of another file", fixture: "djpackage", settingsFile: "proj/settings/dev.py", settings: readEnv(`"shop" / ".env"`),
			note: "the settings read $SITE_ID, but not from .env-local: a `manage.py runserver` started by hand gets SITE_ID 3"},
		{name: "read_env of .env-local", fixture: "djpackage", settingsFile: "proj/settings/dev.py", settings: readEnv(`".env-local"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := testenv.DjangoFixture(t, tt.fixture, true)
			if tt.settings != "" {
				testenv.AppendFile(t, dir, tt.settingsFile, tt.settings)
				os.MkdirAll(filepath.Join(dir, "shop"), 0o755)
				if err := os.WriteFile(filepath.Join(dir, "shop", ".env"), []byte("SITE_ID=3\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out, errOut, code := runCLI(t, dir, djangoEnv(t), "--python", testenv.Python, "use", "2")
			if code != 0 || !strings.Contains(out, "SITE_ID=2: 2 ") || !strings.Contains(out, "written to .env-local") {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, ".env-local")); string(b) != "SITE_ID=2\n" {
				t.Errorf(".env-local = %q", b)
			}
			switch {
			case tt.note == "" && strings.Contains(errOut, "note:"):
				t.Errorf("unexpected note:\n%s", errOut)
			case tt.note != "" && (!strings.Contains(errOut, "siteplex: note: ") || !strings.Contains(errOut, tt.note)):
				t.Errorf("stderr:\n%s\nwant a note with %q", errOut, tt.note)
			}
		})
	}
}
