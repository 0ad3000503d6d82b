package django

import (
	"path/filepath"
	"testing"
)

// TestReconfigure: siteplex_runtime.reconfigure makes a set-up process
// serve another site (what a process forked from a warm parent does).
func TestReconfigure(t *testing.T) {
	for _, name := range []string{"djfixed", "djsiteid", "djmultisite"} {
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
			script := `import django, os
django.setup()
from django.conf import settings
from django.contrib.sites.models import Site
print(int(settings.SITE_ID), Site.objects.get_current().pk)
import siteplex_runtime
siteplex_runtime.reconfigure(3, ["three.localhost:8000"])
hosts = list(settings.ALLOWED_HOSTS)
print(int(settings.SITE_ID), Site.objects.get_current().pk, "three.localhost" in hosts, "one.localhost" in hosts)
# A forked process: the site's environment first, then reconfigure() reads it.
os.environ["SITEPLEX_SITE_ID"] = "2"
os.environ["SITEPLEX_ALLOWED_HOSTS"] = "two.localhost"
siteplex_runtime.reconfigure()
hosts = list(settings.ALLOWED_HOSTS)
print(int(settings.SITE_ID), Site.objects.get_current().pk, "two.localhost" in hosts, "three.localhost" in hosts)
`
			got := runPython(t, dir, env, script)
			// The names of the site it was (one, three) are gone: each call starts
			// from the project's own settings, as configure does.
			if got != "1 1\n3 3 True False\n2 2 True False" {
				t.Errorf("got %q", got)
			}
		})
	}
}
