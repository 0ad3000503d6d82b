package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/siteplex/siteplex/sites"
)

type domainsOptions struct {
	Format string
	DryRun bool
	JSON   bool
	// Rollback is --rollback-journal: consent to roll back an unfinished
	// SQLite transaction (a hot journal) before anything else.
	Rollback bool
}

func newCmdDomains(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domains",
		Short: "Rewrite django_site domains for local use, and undo it exactly",
		Long: `A database restored from live carries live domains. 'domains rewrite' sets each
django-multisite-plus site's django_site.domain to the local domain format
applied to its slug, once and in one transaction — what django-multisite-plus's
REWRITE_DOMAINS does at every start. Before it commits, it records every row it
changes or creates in a journal in .siteplex/; 'domains restore' is an exact
undo from that journal, and 'domains status' says whether a rewrite is in
effect.

Canonical django-multisite aliases of the rewritten sites follow the domain
(missing ones are created); other aliases are live domains and are never
changed. last_updated_at is not touched. Sites without a multisite-plus row
or slug are left alone entirely. A new domain that is not a valid hostname,
longer than 100 characters, or already used by another site (as its domain or
an alias) stops the whole change: nothing is written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return sites.Usagef("domains needs a subcommand: rewrite, restore or status (see siteplex domains --help)")
		},
	}
	cmd.AddCommand(newCmdDomainsRewrite(f), newCmdDomainsRestore(f), newCmdDomainsStatus(f))
	return cmd
}

func newCmdDomainsRewrite(f *Factory) *cobra.Command {
	opts := &domainsOptions{}
	cmd := &cobra.Command{
		Use:   "rewrite",
		Short: "Set each multisite-plus site's domain to the local format applied to its slug",
		Example: `  $ siteplex domains rewrite --dry-run
  $ siteplex domains rewrite
  $ siteplex domains rewrite --format '{}.example.test'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return domainsRewriteRun(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Format, "format", "", "domain format: {slug}, {id}, {} (default: --domain-format, config domain_format, DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT, {slug}.localhost)")
	addDomainsFlags(cmd, opts)
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print old → new per site and change nothing")
	return cmd
}

func newCmdDomainsRestore(f *Factory) *cobra.Command {
	opts := &domainsOptions{}
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Undo 'domains rewrite' exactly, from its journal",
		Long: `Put back every row 'domains rewrite' changed — django_site domains, canonical
aliases, and the aliases it created are deleted again — exactly as they were,
from the journal the rewrite wrote in .siteplex/. A row changed since the
rewrite is reported and left as it is. Without a journal there is nothing to
undo: restore refuses and changes nothing.`,
		Example: `  $ siteplex domains restore --dry-run
  $ siteplex domains restore`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return domainsRestoreRun(cmd.Context(), f, opts)
		},
	}
	addDomainsFlags(cmd, opts)
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print what would be put back and change nothing")
	return cmd
}

func newCmdDomainsStatus(f *Factory) *cobra.Command {
	opts := &domainsOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether a rewrite is in effect, and what restore would put back",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return domainsStatusRun(cmd.Context(), f, opts)
		},
	}
	addDomainsFlags(cmd, opts)
	return cmd
}

func addDomainsFlags(cmd *cobra.Command, opts *domainsOptions) {
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&opts.Rollback, "rollback-journal", false, "first roll back an unfinished SQLite transaction (a hot journal left by a killed process), as SQLite itself would")
}

// domainsStore opens the project's database for a domains command:
// writable unless readOnly. An unfinished SQLite transaction (a hot
// journal) is rolled back first when the user said so (--rollback-journal).
func domainsStore(ctx context.Context, f *Factory, opts *domainsOptions, cmdName string, readOnly bool) (*sites.Project, sites.DB, *sites.Store, error) {
	p, err := f.RealProject()
	if err != nil {
		return nil, sites.DB{}, nil, err
	}
	db, err := p.ResolveDB(ctx, f.Docker())
	if err != nil {
		return p, db, nil, err
	}
	f.noteDB(db)
	// A read-write open would roll an unfinished transaction back
	// silently: only with the user's consent.
	if j, hot := sites.HotJournal(db); hot && !opts.Rollback {
		return p, db, nil, &sites.HotJournalError{Path: db.Path, Journal: j, Command: domainsRollbackCommand(cmdName)}
	}
	if opts.Rollback {
		rolled, err := sites.RollbackHotJournal(ctx, db)
		if err != nil {
			return p, db, nil, err
		}
		if rolled {
			fmt.Fprintf(f.IO.Err, "siteplex: rolled back an unfinished transaction in %s (its hot journal), as SQLite does\n", db.Display())
		}
	}
	st, err := sites.Open(ctx, db, !readOnly)
	return p, db, st, err
}

// domainsRollbackCommand is the domains command that rolls an unfinished
// SQLite transaction back first.
func domainsRollbackCommand(name string) string {
	return "siteplex domains " + name + " --rollback-journal"
}

func domainsRewriteRun(ctx context.Context, f *Factory, opts *domainsOptions) error {
	p, err := f.Project()
	if err != nil {
		return err
	}
	format := p.Format
	if opts.Format != "" {
		if format, err = sites.ParseDomainFormat(opts.Format); err != nil {
			return err
		}
	}
	// Read-only for a dry run: it must not be able to change anything.
	return domainsWith(ctx, f, opts, "rewrite", opts.DryRun, func(st *sites.Store, db sites.DB, journal string) error {
		rep, err := st.RewriteDomains(ctx, sites.DomainOptions{Format: format, DryRun: opts.DryRun, Journal: journal})
		if err != nil || opts.JSON {
			return jsonOr(f, rep, err)
		}
		printDomainReport(f.IO.Out, rep, db)
		return nil
	})
}

func domainsRestoreRun(ctx context.Context, f *Factory, opts *domainsOptions) error {
	return domainsWith(ctx, f, opts, "restore", opts.DryRun, func(st *sites.Store, db sites.DB, journal string) error {
		rep, err := st.RestoreDomains(ctx, sites.RestoreOptions{Journal: journal, DryRun: opts.DryRun})
		if err != nil || opts.JSON {
			return jsonOr(f, rep, err)
		}
		printRestoreReport(f.IO.Out, rep, db)
		return nil
	})
}

func domainsStatusRun(ctx context.Context, f *Factory, opts *domainsOptions) error {
	return domainsWith(ctx, f, opts, "status", true, func(st *sites.Store, db sites.DB, journal string) error {
		ds, err := st.DomainsStatus(ctx, journal)
		if err != nil || opts.JSON {
			return jsonOr(f, ds, err)
		}
		printDomainsStatus(f.IO.Out, ds, db)
		return nil
	})
}

// domainsWith opens the database for the domains subcommand name (see
// domainsStore) and runs fn with it and the database's journal path.
func domainsWith(ctx context.Context, f *Factory, opts *domainsOptions, name string, readOnly bool, fn func(st *sites.Store, db sites.DB, journal string) error) error {
	p, db, st, err := domainsStore(ctx, f, opts, name, readOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st, db, sites.DomainJournalPath(p.StateDir(), db))
}

// jsonOr returns err, or prints v as JSON.
func jsonOr(f *Factory, v any, err error) error {
	if err != nil {
		return err
	}
	return writeJSON(f.IO.Out, v)
}

// printDomainsStatus prints `domains status`.
func printDomainsStatus(w io.Writer, ds *sites.DomainsStatus, db sites.DB) {
	switch {
	case ds.Rewrites == 0:
		fmt.Fprintf(w, "no rewrite in effect in %s (no journal: the domains are as the database had them)\n", db.Display())
	case ds.Active:
		fmt.Fprintf(w, "a rewrite is in effect in %s: %d %s since %s, last format %s; `siteplex domains restore` puts back %d %s\n",
			db.Display(), ds.Rewrites, plural(ds.Rewrites, "rewrite", "rewrites"), ds.Since, ds.Format, ds.Restorable, plural(ds.Restorable, "row", "rows"))
	default:
		fmt.Fprintf(w, "no rewrite in effect in %s: the journal %s holds nothing a restore would change\n", db.Display(), ds.Journal)
	}
	printChanged(w, ds.Changed)
}

// printDomainReport prints old → new per site, the sites left alone, the
// alias work and a summary.
func printDomainReport(w io.Writer, rep *sites.DomainReport, db sites.DB) {
	head := "rewrite"
	if rep.Format != "" {
		head += " (format " + rep.Format + ")"
	}
	if rep.DryRun {
		head += ", dry run"
	}
	fmt.Fprintf(w, "%s in %s:\n", head, db.Display())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range rep.Changes {
		if c.Changed() {
			fmt.Fprintf(tw, "  %d\t%s\t%s → %s\n", c.ID, orDash(c.Slug), clean(c.Old), clean(c.New))
		} else {
			fmt.Fprintf(tw, "  %d\t%s\t%s (unchanged)\n", c.ID, orDash(c.Slug), clean(c.Old))
		}
	}
	tw.Flush()
	if len(rep.Skipped) > 0 {
		fmt.Fprintln(w, "left alone (domain and aliases untouched):")
		for _, s := range rep.Skipped {
			fmt.Fprintf(tw, "  %d\t%s\t%s\n", s.ID, clean(s.Domain), s.Reason)
		}
		tw.Flush()
	}
	n := rep.ChangedCount()
	sitesWord := plural(n, "site", "sites")
	aliases := ""
	if rep.AliasTable {
		aliases = fmt.Sprintf("; canonical aliases: %d re-synced, %d created", rep.AliasesUpdated, rep.AliasesCreated)
	}
	if rep.DryRun {
		fmt.Fprintf(w, "would change %s %s%s. Nothing was changed (--dry-run).\n", strconv.Itoa(n), sitesWord, aliases)
		return
	}
	fmt.Fprintf(w, "changed %d %s%s.\n", n, sitesWord, aliases)
	if rep.Journal != "" {
		fmt.Fprintf(w, "Recorded in %s: `siteplex domains restore` undoes it exactly.\n", rep.Journal)
	}
	if n > 0 {
		fmt.Fprintln(w, "Restart the dev servers (django-multisite caches sites), and update the hosts file: siteplex hosts apply")
	}
}

// printRestoreReport prints what was (or would be) put back and what was
// changed since.
func printRestoreReport(w io.Writer, rep *sites.RestoreReport, db sites.DB) {
	head := "restore"
	if rep.DryRun {
		head += ", dry run"
	}
	fmt.Fprintf(w, "%s in %s (%d %s in the journal):\n", head, db.Display(), rep.Rewrites, plural(rep.Rewrites, "rewrite", "rewrites"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rep.Restored {
		switch {
		case r.Deleted:
			fmt.Fprintf(tw, "  %s %d\t(site %d)\t%s: created by the rewrite, deleted\n", r.Table, r.ID, r.SiteID, clean(r.From))
		case r.Table == "django_site":
			fmt.Fprintf(tw, "  %s %d\t\t%s → %s\n", r.Table, r.ID, clean(r.From), clean(r.To))
		default:
			fmt.Fprintf(tw, "  %s %d\t(site %d)\t%s → %s\n", r.Table, r.ID, r.SiteID, clean(r.From), clean(r.To))
		}
	}
	tw.Flush()
	printChanged(w, rep.Changed)
	if rep.Counter != "" {
		fmt.Fprintf(w, "note: %s\n", rep.Counter)
	}
	switch {
	case rep.DryRun:
		fmt.Fprintf(w, "would put back %d %s. Nothing was changed (--dry-run).\n", len(rep.Restored), plural(len(rep.Restored), "row", "rows"))
	case len(rep.Restored) == 0 && len(rep.Changed) == 0:
		fmt.Fprintln(w, "nothing to undo: every row already holds its value from before the rewrite (the rewrite never committed, or was undone); the journal is removed.")
	default:
		fmt.Fprintf(w, "put back %d %s.\n", len(rep.Restored), plural(len(rep.Restored), "row", "rows"))
		if len(rep.Changed) > 0 {
			fmt.Fprintf(w, "The rows changed since stay in %s; put them back by hand, or delete the journal to keep them.\n", rep.Journal)
		}
		if len(rep.Restored) > 0 {
			fmt.Fprintln(w, "Restart the dev servers (django-multisite caches sites), and update the hosts file: siteplex hosts apply")
		}
	}
}

func printChanged(w io.Writer, changed []sites.ChangedRow) {
	if len(changed) == 0 {
		return
	}
	fmt.Fprintln(w, "changed since the rewrite, left as they are:")
	for _, c := range changed {
		now := strconv.Quote(c.Now)
		if c.Gone {
			now = "deleted"
		}
		fmt.Fprintf(w, "  %s %d: now %s, the rewrite wrote %q\n", c.Table, c.ID, clean(now), clean(c.Wrote))
	}
}
