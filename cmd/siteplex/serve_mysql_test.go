package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// TestServeMariaDB runs the real `siteplex serve`, per site, over a real
// Django 3.2 project migrated on MariaDB through mysqlclient
// (testdata/djmysql: SITE_ID = 1 hard-coded, ALLOWED_HOSTS localhost only),
// its database named the two ways projects name it: DATABASE_URL=mysql://…
// in .env-local, and DATABASES written out in the settings, found only by
// asking Django. Each site's local name reaches a process serving that
// site (settings.SITE_ID and get_current_site, which reads django_site on
// MariaDB), the identity probe says ✓ in /api/status and in `siteplex
// sites`, and the password is printed nowhere.
func TestServeMariaDB(t *testing.T) {
	const pw = "s3cr@t/p:w#"
	for _, form := range []string{"DATABASE_URL", "DATABASES"} {
		t.Run(form, func(t *testing.T) {
			testenv.NeedPython(t, "django", "MySQLdb")
			bin := buildSiteplex(t)
			m := testenv.StartMariaDB(t)
			name := "serve_" + strings.ToLower(form)
			m.CreateDB(t, name)
			url := m.CreatePasswordUser(t, "serve_app", pw, name)
			dir := testenv.DjangoFixture(t, "djmysql", false)
			var source string
			switch form {
			case "DATABASE_URL":
				writeFile(t, filepath.Join(dir, ".env-local"), "DATABASE_URL="+url+"\n")
				testenv.Migrate(t, dir, "DATABASE_URL="+url)
				source = "DATABASE_URL in .env-local"
			case "DATABASES":
				db, _ := json.Marshal(map[string]any{"ENGINE": "django.db.backends.mysql", "NAME": name,
					"USER": "serve_app", "PASSWORD": pw, "HOST": m.Host, "PORT": strconv.Itoa(m.Port)})
				writeFile(t, filepath.Join(dir, "mysqlproj", "local_settings.py"), "DATABASES = {\"default\": "+string(db)+"}\n")
				testenv.Migrate(t, dir)
				source = "DATABASES['default'] in mysqlproj.settings"
			}

			sp := startServe(t, bin, dir, "--python", testenv.Python, "--start", "all", "--no-watch")
			verdicts := waitServeIdentities(t, sp)
			if len(verdicts) != 3 {
				t.Fatalf("%d sites, want the fixture's 3: %v", len(verdicts), verdicts)
			}
			for slug, s := range verdicts {
				if !s.Identity.OK {
					t.Errorf("%s: identity %s", slug, s.Identity.Detail)
				}
				code, b := httpGet(t, sp.addr, slug+".localhost", "/whoami/")
				var who struct {
					SiteID      int64  `json:"site_id"`
					CurrentSite int64  `json:"current_site"`
					Host        string `json:"host"`
				}
				if code != 200 || json.Unmarshal(b, &who) != nil {
					t.Errorf("%s.localhost/whoami/: HTTP %d %.300s", slug, code, b)
					continue
				}
				if who.SiteID != s.ID || who.CurrentSite != s.ID || who.Host != slug+".localhost" {
					t.Errorf("%s.localhost reached SITE_ID %d, current site %d, Host %q; want site %d", slug, who.SiteID, who.CurrentSite, who.Host, s.ID)
				}
			}

			out, errOut, code := runCLI(t, dir, nil, "sites", "--python", testenv.Python)
			if code != 0 || strings.Count(out, "running ✓") != 3 {
				t.Errorf("sites: exit %d\n%s\n%s", code, out, errOut)
			}
			read := "siteplex: database mysql " + m.Host + ":" + strconv.Itoa(m.Port) + "/" + name + " (from " + source + ")"
			if !strings.Contains(errOut, read) {
				t.Errorf("sites does not say %q:\n%s", read, errOut)
			}
			if strings.Contains(out+errOut+sp.stderr.String(), pw) {
				t.Error("the password was printed")
			}
			env, _ := os.ReadFile(filepath.Join(dir, ".env-local"))
			if form == "DATABASES" && len(env) != 0 {
				t.Errorf("serve wrote an env file: %q", env)
			}
		})
	}
}
