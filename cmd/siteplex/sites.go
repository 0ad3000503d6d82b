package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

// sitesOptions are what `siteplex sites` runs with.
type sitesOptions struct {
	IO *IOStreams
	// Sites loads the project's sites (Factory.Sites).
	Sites func(ctx context.Context) (*sites.Project, []sites.Site, *sites.DB, error)
	// Source says where the sites Sites read came from (nil: not known).
	Source func() *sites.SourceInfo
	// CAPermits returns what the local CA may sign (Factory.caPermits),
	// for the URL column.
	CAPermits func() func(string) bool
	JSON      bool
}

func newCmdSites(f *Factory) *cobra.Command { return newCmdSitesRun(f, sitesRun) }

// newCmdSitesRun builds the command with runF as its action (tests pass
// their own to check flag parsing alone).
func newCmdSitesRun(f *Factory, runF func(context.Context, *sitesOptions) error) *cobra.Command {
	opts := &sitesOptions{IO: f.IO, Sites: f.Sites, Source: f.Source, CAPermits: f.caPermits}
	cmd := &cobra.Command{
		Use:     "sites",
		Aliases: []string{"ls"},
		Short:   "List the project's sites from its database",
		Long: `List the sites of the project: django_site rows, with django-multisite-plus
slugs, real domains and enabled flags, and django-multisite aliases, merged with
sites declared in siteplex.toml.

The database is the first of: --db, database in siteplex.toml,
$SITEPLEX_DATABASE_URL, $DATABASE_URL, DATABASE_URL in the env file,
DATABASES['default'] of the project's settings (siteplex asks the project's
Django, see --python; cached in .siteplex/django.json), the project's
docker-compose database container, db.sqlite3, data/db.sqlite3. database =
"none" in siteplex.toml reads no database (only the declared sites). A
DATABASE_URL naming another database than DATABASES['default'] is set aside
for what Django uses, with a note on stderr (--db overrides). SQLite is
opened read-only. The table form says on stderr which database it read.

--json prints one array of objects with the fields id, name, domain, slug,
real_domain (null without a multisite-plus row), enabled, aliases,
local_domain, forced and problems; the format is stable.`,
		Example: `  $ siteplex sites
  $ siteplex sites --json | jq -r '.[] | select(.problems == []) | .local_domain'
  $ siteplex sites --db postgres://postgres@127.0.0.1:5432/db
  $ siteplex sites --db sqlite:///data/db.sqlite3 --domain-format '{slug}.test'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runF(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON array (the format is stable)")
	return cmd
}

// sitesRun lists the sites: a table for people, or the JSON contract.
func sitesRun(ctx context.Context, opts *sitesOptions) error {
	p, list, db, err := opts.Sites(ctx)
	if err != nil {
		return err
	}
	if list == nil {
		list = []sites.Site{}
	}
	if opts.JSON {
		return writeJSON(opts.IO.Out, list)
	}
	note := databaseNote(ctx, p, db)
	if opts.Source != nil {
		if src := opts.Source(); src != nil && db != nil {
			note += "; sites from " + sourceNote(*src)
		}
	}
	fmt.Fprintln(opts.IO.Err, "siteplex: "+note)
	st := runningEngineStatus(ctx, p)
	var permits func(string) bool
	if st != nil && len(st.HTTPS) > 0 && opts.CAPermits != nil {
		permits = opts.CAPermits()
	}
	if err := printSitesTable(opts.IO.Out, list, st, permits); err != nil {
		return err
	}
	// A wrong site is never only a mark in a column.
	if st != nil {
		for _, ss := range st.Sites {
			if id := ss.Identity; id != nil && id.Checked && !id.OK {
				fmt.Fprintf(opts.IO.Err, "siteplex: %s: %s\n", ss.Slug, id.Detail)
			}
		}
	}
	return nil
}

// databaseNote says where the sites came from, for people: "database
// sqlite dev.db (from DATABASES['default'] in mezzshape.settings)", with
// why Django's settings could not be read when siteplex fell back to a
// guess.
func databaseNote(ctx context.Context, p *sites.Project, db *sites.DB) string {
	if db == nil {
		if p != nil && p.DatabaseOff() {
			return "no database (database = \"none\"); sites from " + filepath.Base(p.Config.Path)
		}
		return "no database; sites from siteplex.toml"
	}
	shown := db.Display()
	if db.Driver == sites.SQLite && p != nil {
		if rel, err := filepath.Rel(p.Root, db.Path); err == nil && !strings.HasPrefix(rel, "..") {
			shown = "sqlite " + rel
		}
	}
	note := "database " + shown + " (from " + db.Source + ")"
	if p != nil && !strings.HasPrefix(db.Source, "DATABASES") && !strings.HasPrefix(db.Source, "--db") &&
		!strings.Contains(db.Source, "DATABASE_URL") && !strings.HasPrefix(db.Source, "database in") {
		if _, err := p.Django(ctx); err != nil && p.IsDjango {
			note += "; guessed, Django's settings were not read: " + err.Error()
		}
	}
	return note
}

// sourceNote names the framework the sites come from, for people:
// "Wagtail (wagtailcore_site)", "django_site (django_site,
// multisite_alias)".
func sourceNote(src sites.SourceInfo) string {
	s := src.String()
	for _, n := range src.Notes {
		s += "; " + n
	}
	return s
}

// runningEngineStatus asks a running engine of the project (docs/engine.md,
// "Control API") for its status. It returns nil when no engine runs or it
// does not answer within a second: the table then has no process columns.
func runningEngineStatus(ctx context.Context, p *sites.Project) *devproxy.Status {
	if p == nil {
		return nil
	}
	ef, err := devproxy.ReadEngineFile(p.StateDir())
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := devproxy.NewClient(ef).Status(ctx)
	if err != nil {
		return nil
	}
	return &st
}

// writeJSON prints v as indented JSON; nil slices print as [].
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printSitesTable prints the aligned table for people; ★ marks the forced
// site and "–" an empty value. With st (a running engine's answer) it
// adds the process state, port, requests served and the site's URL
// through the engine (https where it serves HTTPS and permits says the CA
// may sign the name).
func printSitesTable(w io.Writer, list []sites.Site, st *devproxy.Status, permits func(string) bool) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no sites")
		return err
	}
	var states map[string]devproxy.SiteStatus
	if st != nil {
		states = make(map[string]devproxy.SiteStatus, len(st.Sites))
		for _, s := range st.Sites {
			states[s.Slug] = s
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "\tID\tSLUG\tNAME\tDOMAIN\tREAL\tLOCAL\tENABLED\tALIASES\tPROBLEMS"
	if states != nil {
		head += "\tSTATE\tPORT\tREQ\tURL"
	}
	fmt.Fprintln(tw, head)
	for _, s := range list {
		mark := ""
		if s.Forced {
			mark = "★"
		}
		enabled := "yes"
		if !s.Enabled {
			enabled = "no"
		}
		real := ""
		if s.RealDomain != nil {
			real = *s.RealDomain
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", mark, s.ID, orDash(s.Slug), clean(s.Name),
			clean(s.Domain), orDash(real), orDash(s.LocalDomain), enabled, orDash(strings.Join(s.Aliases, ",")),
			orDash(strings.Join(s.Problems, "; ")))
		if states != nil {
			if ss, ok := states[s.Slug]; ok {
				port := "–"
				if ss.Port != 0 {
					port = strconv.Itoa(ss.Port)
				}
				state := string(ss.State)
				if m := ss.Identity.Mark(); m != "" {
					state += " " + m
				}
				fmt.Fprintf(tw, "\t%s\t%s\t%d\t%s", state, port, ss.Requests, orDash(devproxy.SiteURL(s.LocalDomain, st.Listen, st.HTTPS, permits)))
			} else {
				fmt.Fprint(tw, "\tnot routed\t–\t–\t–")
			}
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return clean(s)
}

// clean makes a database value safe for a terminal line: when it holds a
// C0 or C1 control character (a newline, a tab, ESC, CSI) it is shown
// Go-quoted, so a row cannot move the cursor or break the columns.
func clean(s string) string {
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}
