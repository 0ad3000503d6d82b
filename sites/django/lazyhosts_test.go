package django

import (
	"path/filepath"
	"testing"
)

// TestOverlayLazyAllowedHosts: a project whose ALLOWED_HOSTS is
// django-multisite's lazy list (read from multisite_alias when first
// iterated; iterating it while the settings import raises
// AppRegistryNotReady) starts under the overlay in every mode, admits the
// names routed to the process, and still admits exactly the project's
// own hosts, read at request time. Its middleware reads every answer's
// content, which the probe survives.
func TestOverlayLazyAllowedHosts(t *testing.T) {
	dir := fixture(t, "djmultisite", true)
	info := mustIntrospect(t, dir)
	if info.AllowedHostsLazy == "" {
		t.Errorf("introspection read ALLOWED_HOSTS as a list: %q", info.AllowedHosts)
	}
	ov, err := Write(filepath.Join(dir, ".siteplex", "overlay"), info)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []Mode{PerSite, Single, ProbeOnly} {
		t.Run(string(mode), func(t *testing.T) {
			env, err := ov.ProcessEnv(ProcessOverlay{Mode: mode, SiteID: 1, AllowedHosts: []string{".alpha.localhost", "localhost"}, Secret: "s", Key: string(mode)})
			if err != nil {
				t.Fatal(err)
			}
			srv := startServer(t, dir, env...)
			for host, want := range map[string]int{
				"alpha.localhost":        200, // siteplex's names
				"static.alpha.localhost": 200,
				"localhost:8000":         200,
				"extra.example.net":      200, // MULTISITE_EXTRA_HOSTS
				"www.alpha.example.com":  200, // a multisite_alias row
				"beta.example.com":       200,
				"nope.example.net":       400, // neither
			} {
				if mode == ProbeOnly && want == 200 && (host == "alpha.localhost" || host == "static.alpha.localhost" || host == "localhost:8000") {
					want = 400 // probe mode adds no name
				}
				status, _, body := srv.get(t, "/whoami/", host)
				if status != want {
					t.Errorf("Host %s: HTTP %d, want %d\n%.300s", host, status, want, body)
				}
			}
			if mode != ProbeOnly {
				checkProbe(t, srv, "alpha.localhost", "s", 1, 1, true, "")
				// The project's middleware reads every answer's content:
				// the probe's answer passes it as plain JSON, and is
				// streamed only outside it.
				status, h, body := srv.get(t, ProbePath, "alpha.localhost", HeaderSecret, "s", HeaderSite, "1")
				id, err := ParseProbe(status, h, body)
				if err != nil || !id.ReachedEnd || id.Stream == nil {
					t.Errorf("probe: HTTP %d %v %s", status, err, body)
				}
			}
		})
	}
}
