package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/siteplex/siteplex/hosts"
	"github.com/siteplex/siteplex/sites"
)

// hostsOptions are the flags of `siteplex hosts ...`.
type hostsOptions struct {
	JSON   bool
	DryRun bool
	// Names is --names: domain, local, aliases or all ("" = config, else
	// domain).
	Names string
	// Hosts are --host NAME: host names to apply or remove as given,
	// without reading the sites (what the sudo hand-off runs).
	Hosts []string
	// List is `hosts restore --list`.
	List bool
}

// Name kinds, as --names and the status JSON spell them.
const (
	hostsKindDomain = "domain"
	hostsKindLocal  = "local"
	hostsKindAlias  = "alias"
)

func newCmdHosts(f *Factory) *cobra.Command {
	opts := &hostsOptions{}
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "Manage the sites' entries in /etc/hosts",
		Long: `Keep one managed block of the project's sites in the hosts file:

  # siteplex begin <project>
  127.0.0.1 example.gh
  ::1 example.gh
  # siteplex end <project>

Nothing outside the block is ever changed. A command that would change nothing
writes nothing. Writing /etc/hosts needs root: siteplex says the sudo command.
Without a subcommand, 'hosts' is 'hosts status'.`,
		Example: `  $ siteplex hosts status
  $ siteplex hosts apply                  # every site's domain
  $ siteplex hosts apply gh de --names all
  $ siteplex hosts remove gh
  $ siteplex hosts remove                 # the whole block
  $ siteplex hosts apply --dry-run        # print a unified diff, write nothing
  $ siteplex hosts apply --hosts-file ./hosts.test`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return hostsStatusRun(cmd.Context(), f, opts)
		},
	}
	pf := cmd.PersistentFlags()
	pf.BoolVar(&opts.DryRun, "dry-run", false, "print a unified diff of the change and write nothing")
	pf.StringVar(&opts.Names, "names", "", "names per site: domain (django_site.domain), local (domain + local_domain), aliases (domain + non-canonical aliases), all (default domain, config key names)")

	status := &cobra.Command{
		Use:   "status",
		Short: "Show which of each site's names are in the block (and resolve to loopback)",
		Long: `For every site, list its names (domain, local domain, aliases), whether each
is in the project's block, which other lines of the file list it, and — when the
file is the system's /etc/hosts — what the system resolver answers and whether
that is loopback.`,
		Example: `  $ siteplex hosts status
  $ siteplex hosts status --json | jq '.sites[] | select(.applied | not) | .slug'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return hostsStatusRun(cmd.Context(), f, opts)
		},
	}
	status.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object (the format is stable)")

	apply := &cobra.Command{
		Use:   "apply [SITE...]",
		Short: "Add sites' names to the block (all sites without SITE)",
		Long: `Add the names of the given sites (id, slug or domain) to the project's block,
keeping the rest of the block; without SITE, every site. A site with problems
(see 'siteplex sites') or an invalid name is never written: it is reported on
stderr, the valid ones are still applied, and the exit status is 1.

--host NAME (repeatable) adds NAME itself, without reading the sites: this is
what the sudo command siteplex prints runs, so that root needs no database.`,
		Example: `  $ siteplex hosts apply
  $ siteplex hosts apply gh 3 example.de --names local
  $ sudo siteplex hosts apply --host example.gh --host gh.localhost`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return hostsApplyRun(cmd, f, opts, args)
		},
	}
	remove := &cobra.Command{
		Use:   "remove [SITE...]",
		Short: "Take sites' names out of the block (the whole block without SITE)",
		Long: `Take the names of the given sites out of the project's block (every kind of
name unless --names is given); a SITE may also be a name in the block that
belongs to no site any more. Without SITE the whole block is removed. An
emptied block disappears.`,
		Example: `  $ siteplex hosts remove gh
  $ siteplex hosts remove old.example.com
  $ siteplex hosts remove --host example.gh
  $ siteplex hosts remove`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return hostsRemoveRun(cmd, f, opts, args)
		},
	}
	for _, c := range []*cobra.Command{apply, remove} {
		c.Flags().StringArrayVar(&opts.Hosts, "host", nil, "a host name to add or take out as given, without reading the sites (repeatable)")
	}
	restore := &cobra.Command{
		Use:   "restore [BACKUP]",
		Short: "Put a backup of the hosts file back (--list shows them)",
		Long: `Every change siteplex makes to the hosts file first saves a backup: the file as
it was before siteplex first changed it ("pristine") and the last 5 versions
before each change ("hosts.<UTC time>"), in the state folder of the user who
made the change (changes made with sudo: root's).

'restore' without BACKUP puts back the newest backup, undoing the last change;
BACKUP is a name --list shows ("pristine", "hosts.<UTC time>") or its path.
The restore itself is written like every change: locked, compared before it
replaces the file, with a backup of what it replaces.`,
		Example: `  $ siteplex hosts restore --list
  $ siteplex hosts restore --dry-run
  $ sudo siteplex hosts restore pristine`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return hostsRestoreRun(cmd, f, opts, args)
		},
	}
	restore.Flags().BoolVar(&opts.List, "list", false, "list the backups and change nothing")
	cmd.AddCommand(status, apply, remove, restore)
	return cmd
}

// hostsKey is the key of the project's block.
func hostsKey(p *sites.Project) hosts.Key { return hosts.KeyFor(p.Name, p.Root) }

// hostsNamesMode returns the effective --names value: the flag, else config
// `names`, else "domain". A bad value is a usage error (exit 2).
func hostsNamesMode(opts *hostsOptions, p *sites.Project) (string, error) {
	m := opts.Names
	src := "--names"
	if m == "" && p != nil && p.Config.Names != "" {
		m, src = p.Config.Names, "names in "+p.Config.Path
	}
	switch m {
	case "":
		return "domain", nil
	case "domain", "local", "aliases", "all":
		return m, nil
	}
	return "", sites.Usagef("%s %q: use domain, local, aliases or all", src, m)
}

// hostsSiteName is one raw name of a site and its kind.
type hostsSiteName struct {
	kind, raw string
}

// hostsSiteNames lists s's names for mode (domain, local, aliases, all),
// leaving out those that are never hosts-file material (localhost, IP
// addresses: sites.HostsName). Wildcard aliases (django-multisite's
// *.shop.example) are left out too: a hosts file cannot hold them (see
// hostsLeftOut).
func hostsSiteNames(s *sites.Site, mode string) []hostsSiteName {
	all := hostsSiteNamesAll(s, mode)
	out := all[:0]
	for _, n := range all {
		if sites.HostsName(n.raw) {
			out = append(out, n)
		}
	}
	return out
}

func hostsSiteNamesAll(s *sites.Site, mode string) []hostsSiteName {
	out := []hostsSiteName{{hostsKindDomain, s.Domain}}
	if (mode == "local" || mode == "all") && s.LocalDomain != "" {
		out = append(out, hostsSiteName{hostsKindLocal, s.LocalDomain})
	}
	if mode == "aliases" || mode == "all" {
		for _, a := range s.NonCanonicalAliases() {
			if !sites.IsWildcard(a) {
				out = append(out, hostsSiteName{hostsKindAlias, a})
			}
		}
	}
	return out
}

// hostsNoName reports whether s has no host name of its own by its
// framework's design (sites.Origin.NoHostName) and no other problem that
// keeps it out of the hosts file.
func hostsNoName(s *sites.Site) bool {
	if s.NoHostName == "" {
		return false
	}
	for _, p := range s.Problems {
		if p != s.NoHostName && !slices.Contains(s.HostsProblems, p) {
			return false
		}
	}
	return true
}

// hostsLeftOut lists the names of s that mode selects but no hosts file
// can hold: wildcard aliases.
func hostsLeftOut(s *sites.Site, mode string) []string {
	if mode != "aliases" && mode != "all" {
		return nil
	}
	return s.Wildcards()
}

// hostsSelectSites returns the sites args name (all when args is empty); an
// unknown SITE is a usage error.
func hostsSelectSites(list []sites.Site, args []string) ([]*sites.Site, error) {
	var out []*sites.Site
	if len(args) == 0 {
		for i := range list {
			out = append(out, &list[i])
		}
		return out, nil
	}
	seen := map[int64]bool{}
	for _, a := range args {
		s, ok := sites.Find(list, a)
		if !ok {
			return nil, sites.UnknownSiteError(list, a)
		}
		if !seen[s.ID] {
			seen[s.ID] = true
			out = append(out, s)
		}
	}
	return out, nil
}

func hostsSiteLabel(s *sites.Site) string {
	slug := s.Slug
	if slug == "" {
		slug = "no slug"
	}
	return fmt.Sprintf("site %d (%s)", s.ID, slug)
}

func hostsApplyRun(cmd *cobra.Command, f *Factory, opts *hostsOptions, args []string) error {
	ctx := cmd.Context()
	if len(opts.Hosts) > 0 {
		if len(args) > 0 {
			return sites.Usagef("hosts apply: give SITEs or --host names, not both")
		}
		p, err := f.Project()
		if err != nil {
			return err
		}
		return hostsWrite(cmd, f, opts, p, nil, args, hosts.Edit{Project: hostsKey(p), Add: opts.Hosts}, opts.Hosts)
	}
	p, list, db, err := f.Sites(ctx)
	if err != nil {
		return err
	}
	mode, err := hostsNamesMode(opts, p)
	if err != nil {
		return err
	}
	sel, err := hostsSelectSites(list, args)
	if err != nil {
		return err
	}
	refused := false
	var names []string
	for _, s := range sel {
		if len(args) == 0 && hostsNoName(s) {
			// Every site was asked for: one that has no host name by its
			// framework's design is left out, as wildcards are.
			fmt.Fprintf(f.IO.Err, "siteplex: %s: left out, no host name to write: %s\n", hostsSiteLabel(s), s.NoHostName)
			continue
		}
		if !s.Usable() {
			fmt.Fprintf(f.IO.Err, "siteplex: %s not written to %s: %s\n", hostsSiteLabel(s), p.HostsFile, strings.Join(s.Problems, "; "))
			refused = true
			continue
		}
		for _, p := range s.HostsProblems {
			fmt.Fprintf(f.IO.Err, "siteplex: %s: %s\n", hostsSiteLabel(s), p)
		}
		for _, n := range hostsSiteNames(s, mode) {
			h, err := hosts.Hostname(n.raw)
			if err != nil {
				fmt.Fprintf(f.IO.Err, "siteplex: %s: %s name not written to %s: %v\n", hostsSiteLabel(s), n.kind, p.HostsFile, err)
				refused = true
				continue
			}
			names = append(names, h)
		}
		if w := hostsLeftOut(s, mode); len(w) > 0 {
			fmt.Fprintf(f.IO.Err, "siteplex: %s: left out wildcard alias %s: a hosts file cannot hold wildcards\n", hostsSiteLabel(s), strings.Join(w, ", "))
		}
	}
	if len(names) == 0 {
		if len(list) == 0 {
			fmt.Fprintln(f.IO.Err, "siteplex: no sites: nothing to write")
		}
		if refused {
			return silentExit(1)
		}
		return nil
	}
	if err := hostsWrite(cmd, f, opts, p, db, args, hosts.Edit{Project: hostsKey(p), Add: names}, names); err != nil {
		return err
	}
	if refused {
		return silentExit(1)
	}
	return nil
}

// hostsWrite makes the edit and reports it; names are the host names the
// edit adds or takes out, for the sudo command (nil: the whole block).
func hostsWrite(cmd *cobra.Command, f *Factory, opts *hostsOptions, p *sites.Project, db *sites.DB, args []string, edit hosts.Edit, names []string) error {
	res, err := hosts.Update(cmd.Context(), p.HostsFile, edit, hosts.Options{DryRun: opts.DryRun})
	if res != nil && res.Recovered != "" {
		fmt.Fprintf(f.IO.Err, "siteplex: %s\n", res.Recovered)
	}
	var ie *hosts.InvalidNameError
	if errors.As(err, &ie) && res != nil {
		// Some --host names were refused, the rest applied.
		hostsReportChange(f.IO, opts, p, res)
		return &exitError{code: 1, err: ie}
	}
	if err != nil {
		return hostsError(cmd, p, db, args, names, err)
	}
	hostsReportChange(f.IO, opts, p, res)
	return nil
}

func hostsRemoveRun(cmd *cobra.Command, f *Factory, opts *hostsOptions, args []string) error {
	ctx := cmd.Context()
	var (
		p    *sites.Project
		db   *sites.DB
		edit hosts.Edit
		err  error
	)
	if len(opts.Hosts) > 0 && len(args) > 0 {
		return sites.Usagef("hosts remove: give SITEs or --host names, not both")
	}
	if len(args) == 0 {
		// The whole block, or names as given: no database needed (it may
		// be down).
		if p, err = f.Project(); err != nil {
			return err
		}
		if _, err := hostsNamesMode(opts, p); err != nil {
			return err
		}
		edit = hosts.Edit{Project: hostsKey(p), RemoveAll: true}
		if len(opts.Hosts) > 0 {
			edit = hosts.Edit{Project: hostsKey(p), Remove: opts.Hosts}
		}
	} else {
		var list []sites.Site
		if p, list, db, err = f.Sites(ctx); err != nil {
			return err
		}
		mode, err := hostsNamesMode(opts, p)
		if err != nil {
			return err
		}
		if opts.Names == "" {
			mode = "all" // remove every name the site may have had written
		}
		edit = hosts.Edit{Project: hostsKey(p)}
		var inBlock map[string]bool
		for _, a := range args {
			if s, ok := sites.Find(list, a); ok {
				for _, n := range hostsSiteNames(s, mode) {
					if h, err := hosts.Hostname(n.raw); err == nil {
						edit.Remove = append(edit.Remove, h)
					}
				}
				continue
			}
			// A name in the block that no site has any more.
			if inBlock == nil {
				rep, err := hosts.Status(ctx, p.HostsFile, hostsKey(p), nil)
				if err != nil {
					return hostsError(cmd, p, db, args, nil, err)
				}
				inBlock = map[string]bool{}
				for _, n := range rep.BlockNames {
					inBlock[n] = true
				}
			}
			if h, err := hosts.Hostname(a); err == nil && inBlock[h] {
				edit.Remove = append(edit.Remove, h)
				continue
			}
			return sites.UnknownSiteError(list, a)
		}
	}
	var names []string
	if !edit.RemoveAll {
		names = edit.Remove
	}
	return hostsWrite(cmd, f, opts, p, db, args, edit, names)
}

// hostsReportChange prints the diff (--dry-run) or a one-line summary.
func hostsReportChange(io *IOStreams, opts *hostsOptions, p *sites.Project, res *hosts.Result) {
	if opts.DryRun {
		if res.Changed {
			fmt.Fprint(io.Out, res.Diff())
		} else {
			fmt.Fprintf(io.Err, "siteplex: %s: no change\n", p.HostsFile)
		}
		return
	}
	if !res.Changed {
		fmt.Fprintf(io.Out, "%s: up to date (block %q: %d names); nothing written\n", p.HostsFile, p.Name, len(res.Names))
		return
	}
	hostsWarnMoved(io.Err, res.Path, res.MovedOut)
	if res.Adopted {
		fmt.Fprintf(io.Err, "siteplex: the block had an older marker (before blocks carried the project's hash, or under an older name); it now reads %q\n", hosts.BeginMarker(hostsKey(p)))
	}
	if res.Retried > 0 {
		fmt.Fprintf(io.Err, "siteplex: %s changed while siteplex was writing it; re-read it and applied the change to the new content (%d time(s))\n", res.Path, res.Retried)
	}
	var parts []string
	if len(res.Added) > 0 {
		parts = append(parts, fmt.Sprintf("added %d (%s)", len(res.Added), hostsAbbrev(res.Added)))
	}
	if len(res.Removed) > 0 {
		parts = append(parts, fmt.Sprintf("removed %d (%s)", len(res.Removed), hostsAbbrev(res.Removed)))
	}
	how := ""
	if res.InPlace {
		how = ", rewritten in place"
	}
	if len(parts) == 0 && len(res.MovedOut) > 0 {
		parts = append(parts, fmt.Sprintf("moved %d line(s) out of the block", len(res.MovedOut)))
	}
	if len(parts) == 0 {
		parts = append(parts, "rewrote the block")
	}
	fmt.Fprintf(io.Out, "%s: %s; block %q now has %d names%s\n", p.HostsFile, strings.Join(parts, ", "), p.Name, len(res.Names), how)
	if res.Pristine != "" {
		fmt.Fprintf(io.Err, "siteplex: saved the original hosts file as %s\n", res.Pristine)
	}
}

func hostsAbbrev(names []string) string {
	if len(names) <= 5 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:5], ", ") + fmt.Sprintf(", … %d more", len(names)-5)
}

// hostsWarnMoved says which lines siteplex did not write it moved out of
// its block.
func hostsWarnMoved(w io.Writer, file string, moved []hosts.ForeignLine) {
	if len(moved) == 0 {
		return
	}
	fmt.Fprintf(w, "siteplex: warning: %d line(s) inside siteplex's block in %s were not written by siteplex; moved them out of the block, unchanged:\n", len(moved), file)
	for _, l := range moved {
		fmt.Fprintf(w, "  line %d: %s\n", l.Line, clean(l.Text))
	}
}

// hostsError adds the sudo command to a *hosts.PermissionError; other
// errors pass through. An *InvalidNameError means some names were refused
// (printed) while the rest were applied.
func hostsError(cmd *cobra.Command, p *sites.Project, db *sites.DB, args, names []string, err error) error {
	var pe *hosts.PermissionError
	if errors.As(err, &pe) {
		pe.Command = hostsSudoCommand(cmd, p, db, args, names)
		return &exitError{code: 1, err: pe}
	}
	return err
}

// hostsSudoCommand is the command line to run the same hosts command as
// root: the user's flags, plus what sudo's reset environment would lose
// (SITEPLEX_HOSTS_FILE, a database URL from the environment). It never
// carries a secret: when the database URL that root would need has a
// password (or comes from --db with one), the command passes the host
// names themselves (--host, names; nil names: the whole block) and
// --project, so root does not open the database at all.
func hostsSudoCommand(cmd *cobra.Command, p *sites.Project, db *sites.DB, args, names []string) string {
	var dbURL string
	secret := false
	changed := func(name string) bool { fl := cmd.Flags().Lookup(name); return fl != nil && fl.Changed }
	if changed("db") {
		dbURL = cmd.Flags().Lookup("db").Value.String()
	} else if db != nil {
		for _, k := range []string{"SITEPLEX_DATABASE_URL", "DATABASE_URL"} {
			if db.Source == k {
				dbURL = p.Getenv(k)
			}
		}
	}
	if dbURL != "" && sites.RedactURL(dbURL) != dbURL {
		secret = true
	}
	argv := []string{"hosts", cmd.Name()}
	if secret && len(args) > 0 {
		// The names instead of the SITEs: root need not read the sites.
		for _, n := range names {
			argv = append(argv, "--host", n)
		}
	} else {
		argv = append(argv, args...)
	}
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		switch {
		case fl.Name == "dry-run", fl.Name == "db":
		case secret && len(args) > 0 && fl.Name == "names":
		case fl.Value.Type() == "bool":
			if fl.Value.String() == "true" {
				argv = append(argv, "--"+fl.Name)
			}
		case fl.Value.Type() == "stringArray":
			for _, v := range strings.Split(strings.Trim(fl.Value.String(), "[]"), ",") {
				argv = append(argv, "--"+fl.Name, v)
			}
		default:
			argv = append(argv, "--"+fl.Name, fl.Value.String())
		}
	})
	if !changed("hosts-file") && p.Config.HostsFile == "" && p.HostsFile != hosts.SystemFile {
		argv = append(argv, "--hosts-file", p.HostsFile)
	}
	if secret && len(args) == 0 && len(names) > 0 && !changed("host") && cmd.Name() == "apply" {
		// `apply` of every site: the names it computed.
		for _, n := range names {
			argv = append(argv, "--host", n)
		}
	}
	if !changed("project") && (secret || dbURL != "") {
		argv = append(argv, "--project", p.Root)
	}
	if dbURL != "" && !secret && !changed("db") {
		argv = append(argv, "--db", dbURL)
	}
	return hosts.Quote(hosts.SudoArgv(argv...))
}

// hostsStatus is the JSON shape of `siteplex hosts status --json`.
type hostsStatus struct {
	HostsFile string `json:"hosts_file"`
	Project   string `json:"project"`
	System    bool   `json:"system"`
	Block     bool   `json:"block"`
	Line      int    `json:"line"`
	// Names is the --names selection "applied" is judged by.
	Names string            `json:"names"`
	Sites []hostsSiteStatus `json:"sites"`
	Other []string          `json:"other_names"`
	// Marker is the block's begin marker; LegacyMarker is true when the
	// block still has an older one (the next write renews it).
	Marker       string `json:"marker"`
	LegacyMarker bool   `json:"legacy_marker"`
	// Foreign are lines in the block siteplex did not write; the next
	// write moves them out of the block, unchanged.
	Foreign []hosts.ForeignLine `json:"foreign_lines"`
	// Interrupted is true when an in-place write was cut short; the next
	// apply or remove finishes or undoes it.
	Interrupted bool `json:"interrupted_write"`
}

type hostsSiteStatus struct {
	ID       int64    `json:"id"`
	Slug     string   `json:"slug"`
	Domain   string   `json:"domain"`
	Usable   bool     `json:"usable"`
	Problems []string `json:"problems"`
	// Applied is true when every name --names selects is in the block.
	Applied bool              `json:"applied"`
	Names   []hostsNameStatus `json:"names"`
}

type hostsNameStatus struct {
	Name      string            `json:"name"`
	Kind      string            `json:"kind"`
	Error     string            `json:"error,omitempty"`
	InBlock   bool              `json:"in_block"`
	Elsewhere []int             `json:"elsewhere"`
	Resolved  *hosts.Resolution `json:"resolved,omitempty"`
}

func hostsStatusRun(ctx context.Context, f *Factory, opts *hostsOptions) error {
	p, list, _, err := f.Sites(ctx)
	if err != nil {
		return err
	}
	mode, err := hostsNamesMode(opts, p)
	if err != nil {
		return err
	}
	var ask []string
	for i := range list {
		for _, n := range hostsSiteNames(&list[i], "all") {
			ask = append(ask, n.raw)
		}
	}
	rep, err := hosts.Status(ctx, p.HostsFile, hostsKey(p), ask)
	if err != nil {
		return err
	}
	out := hostsStatus{HostsFile: rep.Path, Project: p.Name, System: rep.System, Block: rep.Block,
		Line: rep.Line, Names: mode, Sites: []hostsSiteStatus{}, Other: rep.Extra, Marker: hosts.BeginMarker(hostsKey(p)),
		LegacyMarker: rep.Legacy, Foreign: rep.Foreign, Interrupted: rep.Interrupted}
	k := 0
	for i := range list {
		s := &list[i]
		ss := hostsSiteStatus{ID: s.ID, Slug: s.Slug, Domain: s.Domain, Usable: s.Usable(),
			Problems: s.Problems, Applied: s.Usable(), Names: []hostsNameStatus{}}
		if ss.Problems == nil {
			ss.Problems = []string{}
		}
		selected := map[hostsSiteName]bool{}
		for _, n := range hostsSiteNames(s, mode) {
			selected[n] = true
		}
		for _, n := range hostsSiteNames(s, "all") {
			ns := rep.Names[k]
			k++
			ss.Names = append(ss.Names, hostsNameStatus{Name: ns.Name, Kind: n.kind, Error: ns.Error,
				InBlock: ns.InBlock, Elsewhere: ns.Elsewhere, Resolved: ns.Resolved})
			if selected[n] && !ns.InBlock {
				ss.Applied = false
			}
		}
		out.Sites = append(out.Sites, ss)
	}
	if opts.JSON {
		return writeJSON(f.IO.Out, out)
	}
	return printHostsStatus(f.IO.Out, &out)
}

func printHostsStatus(w io.Writer, st *hostsStatus) error {
	where := "not the system's file: names are not resolved"
	if st.System {
		where = "the system's file"
	}
	block := fmt.Sprintf("no block %q", st.Project)
	if st.Block {
		block = fmt.Sprintf("block %q at line %d", st.Project, st.Line)
	}
	fmt.Fprintf(w, "%s (%s): %s\n", st.HostsFile, where, block)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "ID\tSLUG\tNAME\tKIND\tIN BLOCK\tOTHER LINES"
	if st.System {
		head += "\tRESOLVES TO"
	}
	fmt.Fprintln(tw, head)
	for _, s := range st.Sites {
		for j, n := range s.Names {
			id, slug := "", ""
			if j == 0 {
				id, slug = fmt.Sprint(s.ID), orDash(s.Slug)
			}
			in := "·"
			if n.InBlock {
				in = "✓"
			}
			name := n.Name
			if n.Error != "" {
				name, in = clean(n.Name), "✗ invalid"
			}
			other := "–"
			if len(n.Elsewhere) > 0 {
				other = "line " + strings.Trim(strings.Join(strings.Fields(fmt.Sprint(n.Elsewhere)), ","), "[]")
			}
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", id, slug, name, n.Kind, in, other)
			if st.System {
				res := "–"
				if r := n.Resolved; r != nil {
					switch {
					case r.Error != "":
						res = "✗ does not resolve"
					case r.Loopback:
						res = "✓ " + strings.Join(r.Addrs, ", ")
					default:
						res = "✗ " + strings.Join(r.Addrs, ", ") + " (not loopback)"
					}
				}
				line += "\t" + res
			}
			fmt.Fprintln(tw, line)
		}
		if !s.Usable {
			fmt.Fprintf(tw, "\t\t⚠ %s\n", clean(strings.Join(s.Problems, "; ")))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Other) > 0 {
		fmt.Fprintf(w, "in the block but no site's: %s (siteplex hosts remove NAME)\n", strings.Join(st.Other, ", "))
	}
	for _, l := range st.Foreign {
		fmt.Fprintf(w, "line %d is in the block but siteplex did not write it (the next apply or remove moves it out, unchanged): %s\n", l.Line, clean(l.Text))
	}
	if st.LegacyMarker {
		fmt.Fprintf(w, "the block has an older marker; the next apply or remove renews it to %q\n", st.Marker)
	}
	if st.Interrupted {
		fmt.Fprintf(w, "warning: a siteplex write of %s was interrupted; the next apply or remove finishes or undoes it\n", st.HostsFile)
	}
	if len(st.Sites) == 0 {
		fmt.Fprintln(w, "no sites")
	}
	return nil
}

// hostsRestoreRun is `siteplex hosts restore [BACKUP] [--list]`.
func hostsRestoreRun(cmd *cobra.Command, f *Factory, opts *hostsOptions, args []string) error {
	p, err := f.Project()
	if err != nil {
		return err
	}
	base, err := hosts.StateDir()
	if err != nil {
		return err
	}
	file := p.HostsFile
	dir := hosts.BackupFolder(base, hostsResolved(file))
	list, err := hosts.Backups(base, file)
	if err != nil {
		return fmt.Errorf("listing the backups in %s: %w", dir, err)
	}
	if opts.List && len(args) > 0 {
		return sites.Usagef("hosts restore: give BACKUP or --list, not both")
	}
	pristine := filepath.Join(dir, "pristine")
	havePristine := false
	if fi, err := os.Lstat(pristine); err == nil && fi.Mode().IsRegular() {
		havePristine = true
	}
	kept, _ := filepath.Glob(filepath.Join(dir, "interrupted.*"))
	if opts.List {
		if len(list) == 0 && !havePristine && len(kept) == 0 {
			fmt.Fprintf(f.IO.Out, "no backups of %s in %s\n", file, dir)
			if os.Geteuid() != 0 {
				fmt.Fprintf(f.IO.Out, "changes made with sudo keep their backups in root's state folder: sudo %s hosts restore --list\n", hosts.Executable())
			}
			return nil
		}
		fmt.Fprintf(f.IO.Out, "backups of %s in %s (newest last):\n", file, dir)
		tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
		show := func(path, what string) {
			fi, err := os.Lstat(path)
			if err != nil {
				return
			}
			fmt.Fprintf(tw, "  %s\t%d bytes\t%s\n", filepath.Base(path), fi.Size(), what)
		}
		if havePristine {
			show(pristine, "before siteplex first changed it")
		}
		for _, k := range kept {
			show(k, "kept after an interrupted write met another program's change")
		}
		for i, b := range list {
			what := ""
			if i == len(list)-1 {
				what = "before the last change (restored by `siteplex hosts restore`)"
			}
			show(b, what)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(f.IO.Out, "restore one with: siteplex hosts restore NAME (--dry-run shows the diff)")
		return nil
	}
	backup := ""
	switch {
	case len(args) == 1:
		backup = args[0]
	case len(list) > 0:
		backup = list[len(list)-1]
	default:
		return fmt.Errorf("no backups of %s in %s: nothing to restore (changes made with sudo keep theirs in root's state folder: sudo %s hosts restore --list)", file, dir, hosts.Executable())
	}
	res, err := hosts.Restore(cmd.Context(), file, backup, hosts.Options{DryRun: opts.DryRun})
	if res != nil && res.Recovered != "" {
		fmt.Fprintf(f.IO.Err, "siteplex: %s\n", res.Recovered)
	}
	if err != nil {
		var pe *hosts.PermissionError
		if errors.As(err, &pe) {
			argv := []string{"hosts", "restore", filepath.Base(backup)}
			if p.HostsFile != hosts.SystemFile {
				argv = append(argv, "--hosts-file", p.HostsFile)
			}
			pe.Command = hosts.Quote(hosts.SudoArgv(argv...)) + "\n(the backups of changes made with sudo are root's: list them with sudo " + hosts.Executable() + " hosts restore --list)"
			return &exitError{code: 1, err: pe}
		}
		return err
	}
	switch {
	case opts.DryRun && res.Changed:
		fmt.Fprint(f.IO.Out, res.Diff())
	case !res.Changed:
		fmt.Fprintf(f.IO.Out, "%s is already the same as %s; nothing written\n", file, filepath.Base(backup))
	default:
		how := ""
		if res.InPlace {
			how = ", rewritten in place"
		}
		fmt.Fprintf(f.IO.Out, "%s: restored %s%s; what it replaced is saved as %s\n", file, filepath.Base(backup), how, filepath.Base(res.Backup))
	}
	return nil
}

// hostsResolved is path with symlinks resolved, when it can be.
func hostsResolved(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		if abs, err := filepath.Abs(r); err == nil {
			return abs
		}
	}
	return path
}
