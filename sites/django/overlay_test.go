package django

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProcessEnv(t *testing.T) {
	dir := t.TempDir()
	ov, err := Write(filepath.Join(dir, ".siteplex", "overlay"), &Info{SettingsModule: "proj.settings",
		SiteID: SiteID{Kind: KindEnv, EnvVar: "SITE_ID"}, Frameworks: Frameworks{Mezzanine: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"siteplex_overlay.py", "siteplex_runtime.py"} {
		if _, err := os.Stat(filepath.Join(ov.Dir, f)); err != nil {
			t.Error(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".siteplex", ".gitignore")); string(b) == "" {
		t.Error("no .siteplex/.gitignore")
	}
	if b, _ := os.ReadFile(ov.File()); !strings.Contains(string(b), `"proj.settings"`) {
		t.Errorf("overlay module does not name the settings:\n%s", b)
	}
	env, err := ov.ProcessEnv(ProcessOverlay{Mode: PerSite, SiteID: 3, AllowedHosts: []string{"gh.localhost", "localhost"}, Secret: "s", PythonPath: "/x:/y"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PYTHONPATH=" + ov.Dir + ":/x:/y", "DJANGO_SETTINGS_MODULE=siteplex_overlay", "SITEPLEX_PROJECT_SETTINGS=proj.settings",
		"SITEPLEX_OVERLAY=per-site", "SITEPLEX_SECRET=s", "SITEPLEX_SITE_ID=3", "MEZZANINE_SITE_ID=3", "SITE_ID=3", "SITEPLEX_ALLOWED_HOSTS=gh.localhost,localhost"}
	if strings.Join(env, "\n") != strings.Join(want, "\n") {
		t.Errorf("env:\n%s\nwant:\n%s", strings.Join(env, "\n"), strings.Join(want, "\n"))
	}
	// Single mode with 10,000 sites: the names go into a 0600 file.
	var many []string
	for i := 0; i < 10000; i++ {
		many = append(many, fmt.Sprintf("site%d.localhost", i))
	}
	env, err = ov.ProcessEnv(ProcessOverlay{Mode: Single, SiteID: 0, AllowedHosts: many, Secret: "s", Key: "single"})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	var file string
	for _, kv := range env {
		total += len(kv)
		if v, ok := strings.CutPrefix(kv, "SITEPLEX_HOSTS_FILE="); ok {
			file = v
		}
		if strings.HasPrefix(kv, "SITE_ID=") || strings.HasPrefix(kv, "MEZZANINE_SITE_ID=") {
			t.Errorf("single mode sets %s", kv)
		}
	}
	if total > 4096 || file == "" {
		t.Fatalf("env is %d bytes, file %q", total, file)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("hosts file %v %v", st, err)
	}
	var got map[string][]string
	b, _ := os.ReadFile(file)
	if json.Unmarshal(b, &got) != nil || len(got["allowed_hosts"]) != 10000 {
		t.Errorf("hosts file holds %d names", len(got["allowed_hosts"]))
	}
	if _, err := ov.ProcessEnv(ProcessOverlay{Mode: PerSite, SiteID: 1}); err == nil {
		t.Error("no secret accepted")
	}
	if _, err := Write(dir, &Info{SettingsModule: "proj.settings; import os"}); err == nil {
		t.Error("a module name with code accepted")
	}
}

func probeBody(t *testing.T, v map[string]any) []byte {
	t.Helper()
	base := map[string]any{"siteplex_probe": 1, "reached_end": true, "overlay": map[string]any{"mode": "per-site", "site_id": 3, "project_settings": "p.settings"},
		"site_id_setting": map[string]any{"kind": "int", "value": 3}, "host": "gh.localhost", "env": map[string]any{"SITE_ID": "3"}, "errors": map[string]any{}}
	for k, x := range v {
		base[k] = x
	}
	b, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheck(t *testing.T) {
	probe := http.Header{HeaderProbe: {"1"}}
	tests := []struct {
		name    string
		want    Expect
		status  int
		header  http.Header
		body    map[string]any
		ok      bool
		message string
	}{
		{"match", Expect{Host: "gh.localhost", SiteID: 3}, 200, probe, map[string]any{"sites": map[string]any{"id": 3, "domain": "gh.example"}}, true, "✓ site 3 on gh.localhost"},
		{"settings ignore SITE_ID", Expect{Host: "localhost", SiteID: 3}, 200, probe, map[string]any{
			"overlay":         map[string]any{"mode": "probe", "site_id": 3, "project_settings": "shop.settings"},
			"site_id_setting": map[string]any{"kind": "int", "value": 1}, "sites": map[string]any{"id": 1}}, false,
			"✗ serves site 1, expected 3, on localhost: settings ignore SITE_ID — shop.settings sets SITE_ID = 1"},
		{"mezzanine session", Expect{Host: "gh.localhost", SiteID: 3}, 200, probe, map[string]any{
			"sites": map[string]any{"id": 3}, "mezzanine": map[string]any{"site_id": 2}}, false, "✗ serves site 2, expected 3, on gh.localhost: Mezzanine's current_site_id()"},
		{"multisite", Expect{Host: "gh.localhost", SiteID: 3}, 200, probe, map[string]any{
			"sites": map[string]any{"id": 1}, "multisite": map[string]any{"site_id": 1}}, false, "django-multisite resolved the Host"},
		{"rejected host", Expect{Host: "gh.localhost", SiteID: 3}, 200, probe, map[string]any{"reached_end": false, "status": 400,
			"host_error": "DisallowedHost: Invalid HTTP_HOST header: 'gh.localhost'. You may need to add 'gh.localhost' to ALLOWED_HOSTS."}, false,
			"✗ Django rejects Host gh.localhost (not in ALLOWED_HOSTS)"},
		{"no probe", Expect{Host: "gh.localhost", SiteID: 3}, 404, http.Header{}, nil, false, "✗ no identity probe on gh.localhost (HTTP 404)"},
		{"wagtail", Expect{Host: "a.localhost", WagtailSiteID: 2}, 200, probe, map[string]any{"wagtail": map[string]any{"id": 1, "hostname": "localhost"}}, false,
			"✗ Wagtail serves site 1 (localhost), expected 2"},
		{"tenant", Expect{Host: "a.localhost", Schema: "shop"}, 200, probe, map[string]any{"tenant": map[string]any{"schema_name": "shop"}}, true, "✓ tenant shop on a.localhost"},
		{"no tenant", Expect{Host: "b.localhost", Schema: "shop"}, 200, probe, map[string]any{"reached_end": false, "status": 404}, false, "no tenant for Host b.localhost"},
		// The same id, another domain: siteplex reads another database.
		{"other database", Expect{Host: "gh.localhost", SiteID: 2, Domain: "example.gh", Database: "siteplex reads sqlite /p/old.db (from --db); Django's DATABASES['default'] is django.db.backends.sqlite3 /p/db.sqlite3"}, 200, probe,
			map[string]any{"sites": map[string]any{"id": 2, "domain": "two.dev.test"}}, false,
			"✗ site 2 is two.dev.test in the project's database but example.gh in the one siteplex reads, on gh.localhost: siteplex probably reads another database than the project (siteplex reads sqlite /p/old.db (from --db); Django's DATABASES['default'] is"},
		{"domain case and port", Expect{Host: "gh.localhost", SiteID: 2, Domain: "Example.GH."}, 200, probe,
			map[string]any{"sites": map[string]any{"id": 2, "domain": "example.gh:8000"}}, true, "✓ site 2 on gh.localhost"},
		{"domain other port", Expect{Host: "gh.localhost", SiteID: 2, Domain: "example.gh:8001"}, 200, probe,
			map[string]any{"sites": map[string]any{"id": 2, "domain": "example.gh:8000"}}, false, "example.gh:8000 in the project's database but example.gh:8001"},
		{"stream site", Expect{Host: "beta.example.com", SiteID: 2}, 200, probe, map[string]any{
			"site_id_setting": map[string]any{"kind": "object", "value": 2}, "sites": map[string]any{"id": 2},
			"stream": map[string]any{"site_id": 1, "sites": map[string]any{"id": 1, "domain": "alpha.example.com"}}}, false,
			"✗ serves site 1, expected 2, on beta.example.com while a streaming answer is sent: the request's site does not hold"},
		{"stream SITE_ID", Expect{Host: "beta.example.com", SiteID: 2}, 200, probe, map[string]any{
			"site_id_setting": map[string]any{"kind": "object", "value": 2}, "sites": map[string]any{"id": 2},
			"stream": map[string]any{"site_id": 1}}, false, "✗ settings.SITE_ID is 1, expected 2, on beta.example.com while a streaming answer is sent"},
		{"stream ok", Expect{Host: "beta.example.com", SiteID: 2}, 200, probe, map[string]any{
			"site_id_setting": map[string]any{"kind": "object", "value": 2}, "sites": map[string]any{"id": 2},
			"stream": map[string]any{"site_id": 2, "sites": map[string]any{"id": 2}}}, true, "✓ site 2 on beta.example.com"},
		{"manage.py assigns", Expect{Host: "gh.localhost", SiteID: 3, NoProbe: "manage.py sets DJANGO_SETTINGS_MODULE itself"}, 404, http.Header{}, nil, false,
			"✗ no identity probe on gh.localhost (HTTP 404): manage.py sets DJANGO_SETTINGS_MODULE itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != nil {
				body = probeBody(t, tt.body)
			}
			v := CheckResponse(tt.want, tt.status, tt.header, body)
			if v.OK != tt.ok || !strings.Contains(v.Message, tt.message) {
				t.Errorf("got %v %q, want %v %q", v.OK, v.Message, tt.ok, tt.message)
			}
		})
	}
}
