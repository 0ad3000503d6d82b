package django

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// TestReconfigure: siteplex_runtime.reconfigure makes a set-up process
// serve another site (what a process forked from a warm parent does).
func TestReconfigure(t *testing.T) {
	for _, name := range []string{"djfixed", "djsiteid"} {
		t.Run(name, func(t *testing.T) {
			dir := fixture(t, name, true)
			ov, err := Write(filepath.Join(dir, ".siteplex", "overlay"), mustIntrospect(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			env, err := ov.ProcessEnv(ProcessOverlay{Mode: PerSite, SiteID: 1, AllowedHosts: []string{"one.localhost"}, Secret: "s"})
			if err != nil {
				t.Fatal(err)
			}
			script := `import django
django.setup()
from django.conf import settings
from django.contrib.sites.models import Site
print(int(settings.SITE_ID), Site.objects.get_current().pk)
import siteplex_runtime
siteplex_runtime.reconfigure(3, ["three.localhost:8000"])
print(int(settings.SITE_ID), Site.objects.get_current().pk, "three.localhost" in list(settings.ALLOWED_HOSTS))
`
			cmd := exec.Command(testenv.Python, "-B", "-c", script)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != "1 1\n3 3 True" {
				t.Errorf("got %q", got)
			}
		})
	}
}
