package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

type useOptions struct {
	Clear bool
	JSON  bool
}

// useResult is `siteplex use --json`'s answer.
type useResult struct {
	// SiteID is the forced SITE_ID after the command (0: none).
	SiteID int64       `json:"site_id"`
	Site   *sites.Site `json:"site"`
	// EnvFile is the file holding SITE_ID.
	EnvFile string `json:"env_file"`
	// Changed is true when the file was written.
	Changed bool `json:"changed"`
	// RemovedDuplicates counts extra SITE_ID lines that were removed.
	RemovedDuplicates int `json:"removed_duplicates"`
	// Engine is true when a running siteplex engine was told.
	Engine bool `json:"engine"`
}

func newCmdUse(f *Factory) *cobra.Command {
	opts := &useOptions{}
	cmd := &cobra.Command{
		Use:   "use [SITE | --clear]",
		Short: "Force the SITE_ID the dev server runs with",
		Long: `Force the site Django serves by writing SITE_ID=<id> into the env file
(.env-local, else .env; created as .env-local when neither exists). SITE is a
site id, slug, domain or name (case-insensitive). Only the SITE_ID line changes; every other line,
comment, quote and line ending stays as it was.

If a siteplex engine (siteplex serve or the UI) is running for this project,
it switches at once: localhost serves the new site, with no restart in
per-site mode; in single mode the one process restarts while requests wait.

Without SITE, print the forced site. --clear removes SITE_ID.`,
		Example: `  $ siteplex use gh
  $ siteplex use 2
  $ siteplex use example.gh
  $ siteplex use
  $ siteplex use --clear`,
		// Flags are parsed in RunE, so that a negative id (`use -1`, a
		// django-pgschemas static tenant) is a SITE, not a flag.
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rest, ids := splitNegativeIDs(cmd, args)
			cmd.DisableFlagParsing = false // ParseFlags does nothing while it is set
			if err := cmd.ParseFlags(rest); err != nil {
				return flagError{err}
			}
			if help, _ := cmd.Flags().GetBool("help"); help {
				return cmd.Help()
			}
			args = append(cmd.Flags().Args(), ids...)
			if len(args) > 1 {
				return sites.Usagef("use: give one SITE, not %d (%s)", len(args), strings.Join(args, " "))
			}
			ctx := cmd.Context()
			switch {
			case opts.Clear && len(args) > 0:
				return sites.Usagef("use: give a SITE or --clear, not both")
			case opts.Clear:
				return runUseClear(ctx, f, opts)
			case len(args) == 0:
				return runUseShow(ctx, f, opts)
			}
			return runUseSet(ctx, f, opts, args[0])
		},
	}
	cmd.Flags().BoolVar(&opts.Clear, "clear", false, "remove SITE_ID from the env file")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

// splitNegativeIDs takes the negative whole numbers ("-1", a
// django-pgschemas static tenant's id) out of args, unless one is the
// value of the flag before it, so that flag parsing does not read them as
// shorthand flags. rest keeps everything from "--" on.
func splitNegativeIDs(cmd *cobra.Command, args []string) (rest, ids []string) {
	for i, a := range args {
		if a == "--" {
			return append(rest, args[i:]...), ids
		}
		if isNegativeID(a) && (i == 0 || !flagTakesValue(cmd, args[i-1])) {
			ids = append(ids, a)
			continue
		}
		rest = append(rest, a)
	}
	return rest, ids
}

func isNegativeID(a string) bool {
	if len(a) < 2 || a[0] != '-' {
		return false
	}
	_, err := strconv.ParseInt(a[1:], 10, 64)
	return err == nil && a[1] != '-' && a[1] != '+'
}

// flagTakesValue reports whether tok is a flag of cmd (its own or
// inherited) given without "=" that takes a value (the next argument).
func flagTakesValue(cmd *cobra.Command, tok string) bool {
	if !strings.HasPrefix(tok, "-") || strings.Contains(tok, "=") {
		return false
	}
	var fl *pflag.Flag
	if name, long := strings.CutPrefix(tok, "--"); long {
		fl = cmd.Flags().Lookup(name)
		if fl == nil {
			fl = cmd.InheritedFlags().Lookup(name)
		}
	} else if len(tok) == 2 {
		fl = cmd.Flags().ShorthandLookup(tok[1:])
		if fl == nil {
			fl = cmd.InheritedFlags().ShorthandLookup(tok[1:])
		}
	}
	return fl != nil && fl.NoOptDefVal == ""
}

// envName is the env file's path for messages: relative to the project
// root when inside it.
func envName(p *sites.Project) string {
	if rel, err := filepath.Rel(p.Root, p.Env.Path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p.Env.Path
}

// useReportWrite says on stderr how an interrupted write of the env file
// was finished, and where the previous content was saved.
func useReportWrite(f *Factory, ed sites.EnvEdit) {
	if ed.Recovered != "" {
		fmt.Fprintf(f.IO.Err, "siteplex: %s\n", ed.Recovered)
	}
}

// siteLabel is "2 gh (Ghana, example.gh)".
func siteLabel(s *sites.Site) string {
	if s.Name == "" || s.Name == s.Domain {
		return fmt.Sprintf("%d %s (%s)", s.ID, orDash(s.Slug), clean(s.Domain))
	}
	return fmt.Sprintf("%d %s (%s, %s)", s.ID, orDash(s.Slug), clean(s.Name), clean(s.Domain))
}

func runUseSet(ctx context.Context, f *Factory, opts *useOptions, key string) error {
	p, list, _, err := f.Sites(ctx)
	if p == nil {
		return err
	}
	var site *sites.Site
	var id int64
	if err != nil {
		// Forcing an id does not need the database; anything else does.
		n, perr := strconv.ParseInt(strings.TrimSpace(key), 10, 64)
		if perr != nil || n <= 0 {
			return fmt.Errorf("cannot look up site %q: %w (give its numeric id to force it without reading the sites)", key, err)
		}
		fmt.Fprintf(f.IO.Err, "siteplex: warning: could not read the sites, forcing SITE_ID=%d unchecked: %v\n", n, err)
		id = n
	} else {
		s, ok := sites.Find(list, key)
		if !ok {
			return sites.UnknownSiteError(list, key)
		}
		site, id = s, s.ID
		if !s.Enabled {
			fmt.Fprintf(f.IO.Err, "siteplex: warning: site %s is disabled (django_multisite_plus_site.is_enabled is false); Django can still run with it, but siteplex does not route it\n", siteLabel(s))
		}
		if !s.Usable() {
			fmt.Fprintf(f.IO.Err, "siteplex: warning: site %s has problems (%s); Django can still run with it, but siteplex will not route it\n",
				siteLabel(s), strings.Join(s.Problems, "; "))
		}
		if s.ID < 0 {
			return runUseStatic(ctx, f, opts, p, s)
		}
		site.Forced = true
		if s.Source != sites.SourceDjangoSite && s.Source != sites.SourceConfig {
			fmt.Fprintf(f.IO.Err, "siteplex: note: %s comes from %s, which picks the site from the Host header, not from SITE_ID: "+
				"SITE_ID=%d only tells siteplex which site localhost serves (settings that read SITE_ID from the environment would take it for django_site row %d)\n",
				siteLabel(s), s.Source, s.ID, s.ID)
		}
	}
	val := strconv.FormatInt(id, 10)
	ed, err := sites.SaveEnvKey(ctx, p.Env.Path, "SITE_ID", &val)
	useReportWrite(f, ed)
	if err != nil {
		return fmt.Errorf("forcing SITE_ID=%d: %w", id, err)
	}
	name := envName(p)
	if ed.Removed > 0 {
		fmt.Fprintf(f.IO.Err, "siteplex: %s had %d more SITE_ID line(s); removed them, the first one now says SITE_ID=%d\n", name, ed.Removed, id)
	}
	res := useResult{SiteID: id, Site: site, EnvFile: p.Env.Path, Changed: ed.Changed, RemovedDuplicates: ed.Removed}
	if !opts.JSON {
		what := fmt.Sprintf("SITE_ID=%d", id)
		if site != nil {
			what = fmt.Sprintf("SITE_ID=%d: %s", id, siteLabel(site))
		}
		if ed.Changed {
			fmt.Fprintf(f.IO.Out, "%s, written to %s\n", what, name)
		} else {
			fmt.Fprintf(f.IO.Out, "%s, already in %s\n", what, name)
		}
	}
	told, err := tellEngine(ctx, f, p, id, opts.JSON)
	res.Engine = told
	if err != nil {
		return err
	}
	if !told {
		if err := recreateDockerWeb(ctx, f, p, site, id); err != nil {
			return err
		}
	}
	// After the switch: asking the project may run Python.
	if site == nil || site.Source == sites.SourceDjangoSite || site.Source == sites.SourceConfig {
		if note := useReachNote(ctx, p, id); note != "" {
			fmt.Fprintln(f.IO.Err, "siteplex: note: "+note)
		}
	}
	if opts.JSON {
		return writeJSON(f.IO.Out, res)
	}
	return nil
}

// runUseStatic forces a django-pgschemas static tenant (a negative id,
// TENANTS in settings): it has no django_site row and no id Django knows,
// so no SITE_ID is written; a running engine serves it on localhost until
// it stops (docs/use.md).
func runUseStatic(ctx context.Context, f *Factory, opts *useOptions, p *sites.Project, s *sites.Site) error {
	name := envName(p)
	fmt.Fprintf(f.IO.Err, "siteplex: note: %s is a django-pgschemas static tenant (TENANTS in the settings): it has no django_site row and no id Django knows, "+
		"so siteplex writes no SITE_ID (%s is unchanged); django-pgschemas picks it from the Host: open it on its local name %s\n",
		siteLabel(s), name, orDash(s.LocalDomain))
	told, err := tellEngine(ctx, f, p, s.ID, true)
	if err != nil {
		return err
	}
	s.Forced = told
	if opts.JSON {
		return writeJSON(f.IO.Out, useResult{SiteID: p.ForcedID(), Site: s, EnvFile: p.Env.Path, Engine: told})
	}
	if told {
		fmt.Fprintf(f.IO.Out, "%s: the running siteplex serves it on localhost until it stops; nothing written to %s\n", siteLabel(s), name)
	} else {
		fmt.Fprintf(f.IO.Out, "%s: nothing written to %s (a static tenant has no SITE_ID); no siteplex engine runs to serve it on localhost\n", siteLabel(s), name)
	}
	return nil
}

func runUseClear(ctx context.Context, f *Factory, opts *useOptions) error {
	p, err := f.Project()
	if err != nil {
		return err
	}
	ed, err := sites.SaveEnvKey(ctx, p.Env.Path, "SITE_ID", nil)
	useReportWrite(f, ed)
	if err != nil {
		return fmt.Errorf("clearing SITE_ID: %w", err)
	}
	name := envName(p)
	if !opts.JSON {
		switch {
		case !ed.Changed:
			fmt.Fprintf(f.IO.Out, "no SITE_ID in %s: nothing to clear\n", name)
		case ed.Removed > 1:
			fmt.Fprintf(f.IO.Out, "removed %d SITE_ID lines from %s\n", ed.Removed, name)
		default:
			fmt.Fprintf(f.IO.Out, "removed SITE_ID from %s\n", name)
		}
	}
	told, err := tellEngine(ctx, f, p, 0, opts.JSON)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(f.IO.Out, useResult{EnvFile: p.Env.Path, Changed: ed.Changed, RemovedDuplicates: max(ed.Removed-1, 0), Engine: told})
	}
	return nil
}

func runUseShow(ctx context.Context, f *Factory, opts *useOptions) error {
	p, err := f.Project()
	if err != nil {
		return err
	}
	name := envName(p)
	raw, set := p.Env.Values["SITE_ID"]
	id := p.ForcedID()
	if set && id == 0 {
		fmt.Fprintf(f.IO.Err, "siteplex: warning: SITE_ID=%q in %s is not a site id; fix it with `siteplex use SITE`\n", raw, name)
	}
	res := useResult{SiteID: id, EnvFile: p.Env.Path}
	if id != 0 {
		_, list, _, err := f.Sites(ctx)
		if err != nil {
			fmt.Fprintf(f.IO.Err, "siteplex: warning: could not read the sites: %v\n", err)
		} else if s, ok := sites.Find(list, strconv.FormatInt(id, 10)); ok {
			res.Site = s
		} else {
			fmt.Fprintf(f.IO.Err, "siteplex: warning: SITE_ID=%d in %s, but no site has id %d\n", id, name, id)
		}
	}
	engineID, running := engineForced(ctx, p)
	res.Engine = running
	if opts.JSON {
		return writeJSON(f.IO.Out, res)
	}
	switch {
	case id == 0:
		fmt.Fprintf(f.IO.Out, "no site is forced (no SITE_ID in %s)\n", name)
	case res.Site != nil:
		fmt.Fprintf(f.IO.Out, "★ %s  (SITE_ID in %s)\n", siteLabel(res.Site), name)
	default:
		fmt.Fprintf(f.IO.Out, "SITE_ID=%d (in %s)\n", id, name)
	}
	if running && engineID != id {
		fmt.Fprintf(f.IO.Out, "the running siteplex engine forces SITE_ID=%d\n", engineID)
	}
	return nil
}

// engineTimeout bounds a control call; single mode waits for a restart.
const engineTimeout = 90 * time.Second

// tellEngine switches a running engine of this project to siteID (0 =
// clear). told is false when no engine runs.
func tellEngine(ctx context.Context, f *Factory, p *sites.Project, siteID int64, quiet bool) (told bool, err error) {
	ef, err := devproxy.ReadEngineFile(p.StateDir())
	if errors.Is(err, devproxy.ErrNoEngine) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("SITE_ID is written, but the running engine could not be told: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	start := time.Now()
	if err := devproxy.NewClient(ef).Use(ctx, siteID); err != nil {
		return false, fmt.Errorf("SITE_ID is written, but the running engine (pid %d) could not be told: %w", ef.PID, err)
	}
	if !quiet {
		took := time.Since(start).Round(time.Millisecond)
		if siteID == 0 {
			fmt.Fprintf(f.IO.Out, "the running siteplex (pid %d) forces no site now: localhost shows the index (%s)\n", ef.PID, took)
		} else {
			fmt.Fprintf(f.IO.Out, "the running siteplex (pid %d) switched: localhost serves SITE_ID=%d (%s)\n", ef.PID, siteID, took)
		}
	}
	return true, nil
}

// engineForced returns the forced site of a running engine.
func engineForced(ctx context.Context, p *sites.Project) (int64, bool) {
	ef, err := devproxy.ReadEngineFile(p.StateDir())
	if err != nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := devproxy.NewClient(ef).Status(ctx)
	if err != nil {
		return 0, false
	}
	return st.ForcedSiteID, true
}
