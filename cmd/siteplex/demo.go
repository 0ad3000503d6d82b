package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/sites"
)

// demoListen is where the demo listens unless --listen says otherwise.
const demoListen = "127.0.0.1:8080"

func newCmdDemo(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Try siteplex on a throw-away project: no Python, no root",
		Long: `Build a throw-away multi-site project in a temporary folder (a SQLite
database with django_site, django_multisite_plus_site and multisite_alias, and
eight sites: one with aliases, one disabled, one with a broken domain) and run
the terminal UI over it, listening on 127.0.0.1:8080 (or a free port when that
is taken). Every site's process is siteplex's own tiny site server
('siteplex demo-site'), started on the site's first request or with 's'. The
hosts file is a file in the temporary folder, never /etc/hosts.

Try: curl -H 'Host: gh.localhost' http://127.0.0.1:8080/ or open
http://gh.localhost:8080/ in a browser. Quitting stops every process and
removes the folder.`,
		Example: `  $ siteplex demo
  $ siteplex demo --listen 127.0.0.1:0 --start all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return demoRun(cmd.Context(), f) },
	}
	addEngineFlags(cmd, f)
	return cmd
}

// demoSite is one row of the demo database.
type demoSite struct {
	id               int64
	domain, name     string
	slug, realDomain string
	enabled          bool
	aliases          []string
	canonical        bool // the first alias is canonical
	plus             bool // has a django_multisite_plus_site row
}

// demoSites are the demo's sites: the shapes a real project has.
var demoSites = []demoSite{
	{id: 1, domain: "example.de", name: "Germany", slug: "de", realDomain: "www.example.de", enabled: true, plus: true},
	{id: 2, domain: "example.gh", name: "Ghana", slug: "gh", realDomain: "www.example.gh", enabled: true, plus: true,
		aliases: []string{"example.gh", "gh.example-stage.eu", "ghana.example.com"}, canonical: true},
	{id: 3, domain: "example.us", name: "USA", slug: "us", realDomain: "www.example.us", enabled: true, plus: true},
	{id: 4, domain: "example.org:8000", name: "Port Site"}, // no multisite-plus row: slug derived
	{id: 5, domain: "evil.example\n127.0.0.1 bank.example", name: "Injected", slug: "evil", enabled: true, plus: true},
	{id: 6, domain: "archive.example.com", name: "Archive", slug: "archive", realDomain: "archive.example.com", enabled: false, plus: true},
	{id: 7, domain: "example.fr", name: "France", slug: "fr", realDomain: "www.example.fr", enabled: true, plus: true},
	{id: 8, domain: "example.jp", name: "Japan", slug: "jp", realDomain: "www.example.jp", enabled: true, plus: true},
}

// demoDDL is Django's SQLite DDL for the three tables
// (reference/django-multisite.md §1).
var demoDDL = []string{
	`CREATE TABLE "django_site" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  "domain" varchar(100) NOT NULL UNIQUE, "name" varchar(50) NOT NULL)`,
	`CREATE TABLE "multisite_alias" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "domain" varchar(100) NOT NULL UNIQUE,
  "site_id" integer NOT NULL REFERENCES "django_site" ("id") DEFERRABLE INITIALLY DEFERRED,
  "is_canonical" bool NULL, "redirect_to_canonical" bool NOT NULL)`,
	`CREATE UNIQUE INDEX "multisite_alias_is_canonical_site_id_6bc86489_uniq" ON "multisite_alias" ("is_canonical", "site_id")`,
	`CREATE INDEX "multisite_alias_site_id_e73f0f15" ON "multisite_alias" ("site_id")`,
	`CREATE TABLE "django_multisite_plus_site" ("site_id" integer NOT NULL PRIMARY KEY
  REFERENCES "django_site" ("id") DEFERRABLE INITIALLY DEFERRED, "real_domain" varchar(255) NOT NULL,
  "slug" varchar(255) NOT NULL UNIQUE, "is_enabled" bool NOT NULL, "last_updated_at" datetime NOT NULL,
  "extra_uwsgi_ini" text NOT NULL)`,
}

// writeDemoDB creates the demo database at path.
func writeDemoDB(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return fmt.Errorf("demo database: %w", err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("demo database: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, q := range demoDDL {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("demo database: %w", err)
		}
	}
	for _, s := range demoSites {
		if _, err := tx.ExecContext(ctx, `INSERT INTO django_site (id, domain, name) VALUES (?, ?, ?)`, s.id, s.domain, s.name); err != nil {
			return fmt.Errorf("demo database: site %d: %w", s.id, err)
		}
		if s.plus {
			if _, err := tx.ExecContext(ctx, `INSERT INTO django_multisite_plus_site
				(site_id, real_domain, slug, is_enabled, last_updated_at, extra_uwsgi_ini)
				VALUES (?, ?, ?, ?, '2026-01-01 00:00:00', '')`, s.id, s.realDomain, s.slug, s.enabled); err != nil {
				return fmt.Errorf("demo database: site %d: %w", s.id, err)
			}
		}
		for i, a := range s.aliases {
			var canon any
			if i == 0 && s.canonical {
				canon = true
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical)
				VALUES (?, ?, ?, ?)`, a, s.id, canon, true); err != nil {
				return fmt.Errorf("demo database: alias %s: %w", a, err)
			}
		}
	}
	return tx.Commit()
}

// makeDemoProject writes the demo project into dir and returns its root.
func makeDemoProject(ctx context.Context, dir string) (root string, err error) {
	root = filepath.Join(dir, "acme-portal")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	if err := writeDemoDB(ctx, filepath.Join(root, "db.sqlite3")); err != nil {
		return "", err
	}
	files := map[string]string{
		"manage.py":  "# siteplex demo: a stand-in for a Django project (no Python is run)\n",
		".env-local": "# siteplex demo\nSITE_ID=2\n",
		"hosts":      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	return root, nil
}

// demoRun builds the demo project, runs the UI over it and removes
// everything when the UI ends.
func demoRun(ctx context.Context, f *Factory) (err error) {
	// A closed terminal (SIGHUP) must clean up like q does.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	if err := needTerminal(f); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding siteplex itself: %w", err)
	}
	dir, err := os.MkdirTemp("", "siteplex-demo-")
	if err != nil {
		return fmt.Errorf("demo folder: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("removing the demo folder: %w", rerr)
		}
	}()
	root, err := makeDemoProject(ctx, dir)
	if err != nil {
		return err
	}
	// The demo's project, database and hosts file, whatever the
	// environment or the user's flags name.
	f.Opts = sites.Options{
		Project:   root,
		DB:        "sqlite:///" + filepath.Join(root, "db.sqlite3"),
		EnvFile:   filepath.Join(root, ".env-local"),
		HostsFile: filepath.Join(root, "hosts"),
		Config:    "",
		Cwd:       root,
	}
	cfg, err := f.EngineConfig(ctx)
	if err != nil {
		return err
	}
	p, err := f.Project()
	if err != nil {
		return err
	}
	cfg.Command = []string{exe, "demo-site", "--port", "{port}", "--site", "{slug}", "--site-id", "{site_id}"}
	cfg.Runner = supervisor.LocalRunner()
	cfg.Watch = false
	asked := engineFlagsOf(f).listenSet
	if !asked {
		cfg.Listen = []string{demoListen}
	}
	if cfg.HTTPS != nil && !engineFlagsOf(f).httpsSet {
		// The local CA exists: HTTPS on any free port (a demo binds no
		// privileged port).
		cfg.HTTPS.Listen = []string{"127.0.0.1:0"}
	}

	logf, closeLog := uiLog(p)
	defer closeLog()
	cfg.Log = logf
	cfg.Kind = devproxy.KindUI
	e, err := newEngine(cfg)
	if err != nil {
		return err
	}
	notice := ""
	if err := e.Start(ctx); err != nil {
		_ = e.Close(context.Background())
		if asked || !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EACCES) {
			return err
		}
		// 8080 is taken: any free port will do for a demo.
		cfg.Listen = []string{"127.0.0.1:0"}
		if e, err = newEngine(cfg); err != nil {
			return err
		}
		if err := e.Start(ctx); err != nil {
			_ = e.Close(context.Background())
			return err
		}
		notice = "port 8080 is taken: using " + strings.Join(e.Addrs(), ", ") + " · demo project in " + dir + " (removed on quit)"
	}
	if a := e.Addrs(); len(a) > 0 && notice == "" {
		notice = "demo project in " + dir + " (removed on quit) · try " + devproxy.SiteURL("gh.localhost", a, e.HTTPSAddrs(), nil)
	}
	return uiRun(ctx, f, p, cfg, uiExtras{started: e, notice: notice, noSudo: true,
		hostsBackups: filepath.Join(dir, "state")})
}
