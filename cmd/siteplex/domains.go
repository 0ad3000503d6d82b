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
}

func newCmdDomains(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domains",
		Short: "Rewrite django_site domains for local use, or restore the live ones",
		Long: `A database restored from live carries live domains. 'domains rewrite' sets each
django-multisite-plus site's django_site.domain to the local domain format
applied to its slug, once and in one transaction — what django-multisite-plus's
REWRITE_DOMAINS does at every start. 'domains restore' puts real_domain back.

Canonical django-multisite aliases follow the domain (missing ones are
created); other aliases are live domains and are never changed.
last_updated_at is not touched. Sites without a multisite-plus row are left
alone. A new domain that is not a valid hostname, longer than 100
characters, or already used by another site (as its domain or an alias) stops
the whole change: nothing is written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return sites.Usagef("domains needs a subcommand: rewrite or restore (see siteplex domains --help)")
		},
	}
	cmd.AddCommand(newCmdDomainsRewrite(f), newCmdDomainsRestore(f))
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
			return domainsRun(cmd.Context(), f, opts, sites.RewriteDomains)
		},
	}
	cmd.Flags().StringVar(&opts.Format, "format", "", "domain format: {slug}, {id}, {} (default: --domain-format, config domain_format, DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT, {slug}.localhost)")
	addDomainsFlags(cmd, opts)
	return cmd
}

func newCmdDomainsRestore(f *Factory) *cobra.Command {
	opts := &domainsOptions{}
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Put each multisite-plus site's real_domain back into django_site",
		Example: `  $ siteplex domains restore --dry-run
  $ siteplex domains restore`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return domainsRun(cmd.Context(), f, opts, sites.RestoreDomains)
		},
	}
	addDomainsFlags(cmd, opts)
	return cmd
}

func addDomainsFlags(cmd *cobra.Command, opts *domainsOptions) {
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print old → new per site and change nothing")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the report as JSON")
}

func domainsRun(ctx context.Context, f *Factory, opts *domainsOptions, mode sites.DomainMode) error {
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
	db, err := p.ResolveDB(ctx, f.Docker())
	if err != nil {
		return err
	}
	// Read-only for a dry run: it must not be able to change anything.
	st, err := sites.Open(ctx, db, !opts.DryRun)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.ChangeDomains(ctx, sites.DomainOptions{Mode: mode, Format: format, DryRun: opts.DryRun})
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(f.IO.Out, rep)
	}
	printDomainReport(f.IO.Out, rep, db)
	return nil
}

// printDomainReport prints old → new per site, the sites left alone, the
// alias work and a summary.
func printDomainReport(w io.Writer, rep *sites.DomainReport, db sites.DB) {
	verb := "rewrite"
	if rep.Mode == sites.RestoreDomains.String() {
		verb = "restore"
	}
	head := verb
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
		fmt.Fprintln(w, "left alone:")
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
	if n > 0 {
		fmt.Fprintln(w, "Restart the dev servers (django-multisite caches sites), and update the hosts file: siteplex hosts apply")
	}
}
