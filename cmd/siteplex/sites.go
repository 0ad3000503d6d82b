package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/siteplex/siteplex/sites"
)

type sitesOptions struct {
	JSON bool
}

func newCmdSites(f *Factory) *cobra.Command {
	opts := &sitesOptions{}
	cmd := &cobra.Command{
		Use:     "sites",
		Aliases: []string{"ls"},
		Short:   "List the project's sites from its database",
		Long: `List the sites of the project: django_site rows, with django-multisite-plus
slugs, real domains and enabled flags, and django-multisite aliases, merged with
sites declared in siteplex.toml.`,
		Example: `  $ siteplex sites
  $ siteplex sites --json | jq '.[] | .local_domain'
  $ siteplex sites --db postgres://postgres@127.0.0.1:5432/db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, list, _, err := f.Sites(cmd.Context())
			if err != nil {
				return err
			}
			if opts.JSON {
				return writeJSON(f.IO.Out, list)
			}
			return printSitesTable(f.IO.Out, list)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON array (the format is stable)")
	return cmd
}

// writeJSON prints v as indented JSON; nil slices print as [].
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func printSitesTable(w io.Writer, list []sites.Site) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tID\tSLUG\tNAME\tDOMAIN\tLOCAL\tENABLED\tALIASES\tPROBLEMS")
	for _, s := range list {
		mark := ""
		if s.Forced {
			mark = "★"
		}
		enabled := "yes"
		if !s.Enabled {
			enabled = "no"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, s.ID, orDash(s.Slug), clean(s.Name),
			clean(s.Domain), orDash(s.LocalDomain), enabled, orDash(strings.Join(s.Aliases, ",")),
			orDash(strings.Join(s.Problems, "; ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "no sites")
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return clean(s)
}

// clean makes a database value safe for a terminal line: control
// characters are shown quoted.
func clean(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}
