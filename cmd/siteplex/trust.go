package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/siteplex/siteplex/hosts"
	"github.com/siteplex/siteplex/internal/tlsca"
	"github.com/siteplex/siteplex/internal/truststore"
)

// trustOptions are the flags of `siteplex trust` and `siteplex untrust`.
type trustOptions struct {
	Store   string
	Domains []string
	CARoot  string
	Delete  bool
	JSON    bool
}

// trustReport is the JSON shape of `trust --json` and `untrust --json`.
type trustReport struct {
	CARoot string `json:"caroot"`
	// CA is what happened to the CA: created, existing, replaced (trust);
	// kept, deleted, absent (untrust).
	CA          string              `json:"ca"`
	CertFile    string              `json:"cert_file"`
	Name        string              `json:"name"`
	Fingerprint string              `json:"sha256,omitempty"`
	NotAfter    *time.Time          `json:"not_after,omitempty"`
	Scope       []string            `json:"scope,omitempty"`
	Stores      []truststore.Result `json:"stores"`
}

func newCmdTrust(f *Factory) *cobra.Command {
	opts := &trustOptions{}
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Create the local CA for HTTPS and make browsers and tools trust it",
		Long: `Create siteplex's local certificate authority once (ECDSA P-256, valid ten
years, in $SITEPLEX_CAROOT, default $XDG_DATA_HOME/siteplex/ca) and install it
into the trust stores, so that https://<site>.localhost shows a padlock:

  system   the system store: update-ca-certificates (Debian, Ubuntu),
           update-ca-trust (Fedora), trust extract-compat (Arch). Needs root:
           siteplex runs sudo when it can ask for the password, else it prints
           the exact command.
  nss      the NSS databases of Chromium/Chrome (~/.pki/nssdb, created if
           absent) and Firefox profiles, through certutil (libnss3-tools).

The CA can only sign localhost, names under .localhost and loopback addresses,
plus the domains you add with --domain (each covers its subdomains). Adding a
domain the CA does not cover replaces the CA and reinstalls it. Running trust
again changes nothing. 'siteplex untrust' undoes it.`,
		Example: `  $ siteplex trust
  $ siteplex trust --store nss
  $ siteplex trust --domain example.gh --domain example.de
  $ siteplex trust --store none        # only create the CA`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return trustRun(cmd.Context(), f, opts)
		},
	}
	addTrustFlags(cmd, opts, "where to install the CA: system, nss, all or none")
	cmd.Flags().StringArrayVar(&opts.Domains, "domain", nil, "a domain (and its subdomains) the CA may sign besides *.localhost, e.g. a site's real domain (repeatable)")
	return cmd
}

// addTrustFlags adds the flags trust and untrust share.
func addTrustFlags(cmd *cobra.Command, opts *trustOptions, storeHelp string) {
	fl := cmd.Flags()
	fl.StringVar(&opts.Store, "store", "all", storeHelp)
	fl.StringVar(&opts.CARoot, "caroot", "", "the CA folder (default $SITEPLEX_CAROOT, else $XDG_DATA_HOME/siteplex/ca)")
	fl.BoolVar(&opts.JSON, "json", false, "print one JSON object (the format is stable)")
}

func newCmdUntrust(f *Factory) *cobra.Command {
	opts := &trustOptions{}
	cmd := &cobra.Command{
		Use:   "untrust",
		Short: "Remove the local CA from the trust stores (--delete: and its files)",
		Long: `Remove siteplex's local CA from the trust stores 'siteplex trust' installed it
into: the system store (needs root; siteplex runs sudo when it can ask for the
password, else it prints the exact command) and the NSS databases of Chromium
and Firefox. With --delete, the CA's files (key, certificate, cached leaf
certificates) are deleted too, after the stores no longer list it.`,
		Example: `  $ siteplex untrust
  $ siteplex untrust --delete
  $ siteplex untrust --store nss`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return untrustRun(cmd.Context(), f, opts)
		},
	}
	addTrustFlags(cmd, opts, "where to remove the CA from: system, nss, all or none")
	cmd.Flags().BoolVar(&opts.Delete, "delete", false, "also delete the CA files (its key, certificate and leaf cache)")
	return cmd
}

// trustStores turns --store into (system, nss); a bad value is a usage
// error.
func trustStores(store string) (system, nss bool, err error) {
	switch store {
	case "all":
		return true, true, nil
	case truststore.System:
		return true, false, nil
	case truststore.NSS:
		return false, true, nil
	case "none":
		return false, false, nil
	}
	return false, false, flagError{fmt.Errorf("--store %q: use system, nss, all or none", store)}
}

// trustEnv resolves the user siteplex works for and the CA folder.
func trustEnv(f *Factory, opts *trustOptions) (tlsca.User, string, error) {
	getenv := f.Opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	u, err := tlsca.CurrentUser(getenv)
	if err != nil && opts.CARoot == "" && getenv("SITEPLEX_CAROOT") == "" {
		return u, "", err
	}
	caroot := opts.CARoot
	if caroot == "" {
		caroot = tlsca.Root(getenv, u)
	} else if abs, err := filepath.Abs(caroot); err == nil {
		caroot = abs
	}
	return u, caroot, nil
}

func trustRun(ctx context.Context, f *Factory, opts *trustOptions) error {
	if _, _, err := trustStores(opts.Store); err != nil {
		return err
	}
	for _, d := range opts.Domains {
		if err := tlsca.CheckDomain(d); err != nil {
			return flagError{err}
		}
	}
	u, caroot, err := trustEnv(f, opts)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	ca, res, err := tlsca.Ensure(caroot, tlsca.EnsureOptions{Domains: opts.Domains, Label: u.Name + "@" + host, Owner: u.Owner()})
	if err != nil {
		return err
	}
	rep := trustReport{CARoot: caroot, CA: res.String(), CertFile: filepath.Join(caroot, tlsca.CertFile),
		Name: truststore.NameFor(caroot, u), Fingerprint: ca.Fingerprint(), NotAfter: &ca.Cert.NotAfter,
		Scope: ca.Scope(), Stores: []truststore.Result{}}
	target := truststore.Target{Name: rep.Name, CertPEM: ca.CertPEM}
	handoff := changeStores(ctx, f, opts, u, &rep, target, true)
	if err := writeTrust(f, opts, &rep); err != nil {
		return err
	}
	return trustOutcome(rep.Stores, handoff)
}

// changeStores installs (install true) or removes target in the stores
// --store names, adding the results to rep. It returns the sudo command
// when the system store is left for the user to run it.
func changeStores(ctx context.Context, f *Factory, opts *trustOptions, u tlsca.User, rep *trustReport, target truststore.Target, install bool) []string {
	system, nss, _ := trustStores(opts.Store)
	if nss {
		rep.Stores = append(rep.Stores, nssEach(u, func(c *truststore.Certutil, db truststore.NSSDB) truststore.Result {
			if install {
				return c.Install(ctx, db, target)
			}
			return c.Uninstall(ctx, db, target)
		})...)
	}
	if !system {
		return nil
	}
	r, handoff := systemStore(ctx, f, opts, rep.CertFile, target, install)
	rep.Stores = append(rep.Stores, r)
	return handoff
}

// writeTrust prints rep as JSON or for people.
func writeTrust(f *Factory, opts *trustOptions, rep *trustReport) error {
	if opts.JSON {
		return writeJSON(f.IO.Out, rep)
	}
	printTrust(f, rep)
	return nil
}

func untrustRun(ctx context.Context, f *Factory, opts *trustOptions) error {
	if _, _, err := trustStores(opts.Store); err != nil {
		return err
	}
	u, caroot, err := trustEnv(f, opts)
	if err != nil {
		return err
	}
	rep := trustReport{CARoot: caroot, CA: "kept", CertFile: filepath.Join(caroot, tlsca.CertFile),
		Name: truststore.NameFor(caroot, u), Stores: []truststore.Result{}}
	target := truststore.Target{Name: rep.Name}
	ca, err := tlsca.Load(caroot)
	switch {
	case err == nil:
		target.CertPEM = ca.CertPEM
		rep.Fingerprint, rep.NotAfter = ca.Fingerprint(), &ca.Cert.NotAfter
	case errors.Is(err, tlsca.ErrNoCA):
		rep.CA = "absent"
	default:
		// A broken CA can still be removed by name; say so and go on.
		fmt.Fprintln(f.IO.Err, "siteplex: warning:", err)
		if b, rerr := os.ReadFile(rep.CertFile); rerr == nil {
			target.CertPEM = b
		}
	}
	handoff := changeStores(ctx, f, opts, u, &rep, target, false)
	removedEverywhere := true
	for _, r := range rep.Stores {
		removedEverywhere = removedEverywhere && r.OK()
	}
	// A sudo run given --delete deleted the files itself.
	if opts.Delete && removedEverywhere && rep.CA != "absent" {
		if _, err := os.Stat(rep.CertFile); errors.Is(err, os.ErrNotExist) {
			rep.CA = "deleted"
		} else if err := tlsca.Remove(caroot); err != nil {
			return err
		} else {
			rep.CA = "deleted"
		}
	}
	if err := writeTrust(f, opts, &rep); err != nil {
		return err
	}
	if opts.Delete && !removedEverywhere && rep.CA == "kept" {
		fmt.Fprintln(f.IO.Err, "siteplex: the CA files were kept: a store still lists the CA (see above)")
	}
	return trustOutcome(rep.Stores, handoff)
}

// nssEach runs do on every NSS database of u; without certutil, or
// outside Linux, it says why in one result.
func nssEach(u tlsca.User, do func(*truststore.Certutil, truststore.NSSDB) truststore.Result) []truststore.Result {
	if !filepath.IsAbs(u.Home) {
		return []truststore.Result{{Store: truststore.NSS, Status: truststore.Failed,
			Detail: fmt.Sprintf("no home folder for %s (HOME=%q): the browsers' databases live there", u.Name, u.Home)}}
	}
	dbs := truststore.NSSDatabases(u.Home)
	if dbs == nil {
		return []truststore.Result{{Store: truststore.NSS, Status: truststore.Unsupported,
			Detail: "siteplex manages NSS databases on Linux only; import rootCA.pem into Firefox by hand (Settings → Certificates)"}}
	}
	c, err := truststore.NewCertutil(u.Owner())
	if err != nil {
		return []truststore.Result{{Store: truststore.NSS, Location: dbs[0].Dir, Status: truststore.Unsupported, Detail: err.Error()}}
	}
	var out []truststore.Result
	for _, db := range dbs {
		out = append(out, do(c, db))
	}
	return out
}

// systemStore installs (or removes) the CA in the system store when this
// process may; otherwise it hands off to `sudo siteplex …` — run at once
// when the user can answer sudo's password prompt, else returned as the
// command to print.
func systemStore(ctx context.Context, f *Factory, opts *trustOptions, certFile string, target truststore.Target, install bool) (truststore.Result, []string) {
	st, err := truststore.DetectSystem()
	if err != nil {
		return truststore.Result{Store: truststore.System, Status: truststore.Unsupported, Detail: err.Error(),
			Command: truststore.ManualCommand(certFile)}, nil
	}
	if truststore.Privileged() {
		if install {
			return st.Install(ctx, target), nil
		}
		return st.Uninstall(ctx, target), nil
	}
	// Nothing to change needs no root.
	switch cur := st.Status(target); {
	case install && cur.Status == truststore.Trusted:
		cur.Status = truststore.Already
		return cur, nil
	case !install && cur.Status == truststore.Absent:
		return cur, nil
	}
	verb := "untrust"
	if install {
		verb = "trust"
	}
	args := []string{verb, "--store", "system", "--caroot", filepath.Dir(certFile)}
	if !install && opts.Delete {
		args = append(args, "--delete")
	}
	argv := hosts.SudoArgv(args...)
	line := hosts.Quote(argv)
	if opts.JSON || !interactive(f.IO) {
		return truststore.Result{Store: truststore.System, Location: st.File(target.Name), Status: truststore.NeedsRoot,
			Detail: "changing the system store needs root", Command: line}, argv
	}
	fmt.Fprintf(f.IO.Err, "siteplex: the system trust store needs root; running: %s\n", line)
	// sudo asks for the password on the terminal itself; the sudo run's
	// report is shown only when it fails, this one says what it did.
	var report bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, &report, f.IO.Err
	if err := cmd.Run(); err != nil {
		f.IO.Err.Write(report.Bytes())
		return truststore.Result{Store: truststore.System, Location: st.File(target.Name), Status: truststore.Failed,
			Detail: fmt.Sprintf("%s: %v", line, err), Command: line}, nil
	}
	r := st.Status(target)
	switch {
	case install && r.Status == truststore.Trusted:
		r.Status, r.Detail = truststore.Installed, "through sudo; "+r.Detail
	case !install && r.Status == truststore.Absent:
		r.Status, r.Detail = truststore.Removed, "through sudo"
	default:
		r.Status, r.Detail = truststore.Failed, "after "+line+": "+r.Status+" "+r.Detail
	}
	return r, nil
}

// interactive reports whether a person can answer a password prompt:
// standard input and output are terminals.
func interactive(streams *IOStreams) bool {
	in, ok := streams.In.(*os.File)
	if !ok || !streams.IsTerminal {
		return false
	}
	st, err := in.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func printTrust(f *Factory, rep *trustReport) {
	w := f.IO.Out
	switch rep.CA {
	case "absent":
		fmt.Fprintf(w, "local CA: none in %s\n", rep.CARoot)
	case "deleted":
		fmt.Fprintf(w, "local CA: deleted %s\n", rep.CARoot)
	default:
		fmt.Fprintf(w, "local CA: %s (%s)\n", rep.CARoot, rep.CA)
		if len(rep.Scope) > 0 {
			fmt.Fprintf(w, "  signs only: %s\n", strings.Join(rep.Scope, ", "))
		}
		if rep.NotAfter != nil {
			fmt.Fprintf(w, "  valid until %s; SHA-256 %s\n", rep.NotAfter.Format("2006-01-02"), rep.Fingerprint)
		}
	}
	nssChanged := false
	for _, r := range rep.Stores {
		loc := r.Location
		if loc == "" {
			loc = "–"
		}
		fmt.Fprintf(w, "%-6s  %-11s  %s", r.Store, strings.ReplaceAll(r.Status, "_", " "), loc)
		if r.Detail != "" {
			fmt.Fprintf(w, " (%s)", clean(r.Detail))
		}
		fmt.Fprintln(w)
		if r.Store == truststore.NSS && (r.Status == truststore.Installed || r.Status == truststore.Removed) {
			nssChanged = true
		}
	}
	if nssChanged {
		fmt.Fprintln(w, "Restart running browsers to see the change.")
	}
}

// trustOutcome is the exit: 0 when every store is as asked; else 1, with
// the sudo command to run for a store that needs root, or the reasons.
func trustOutcome(results []truststore.Result, handoff []string) error {
	var failed []string
	for _, r := range results {
		switch {
		case r.OK():
		case r.Status == truststore.NeedsRoot:
		case r.Status == truststore.Unsupported && r.Command != "":
			failed = append(failed, fmt.Sprintf("%s: %s; run:\n  %s", r.Store, r.Detail, r.Command))
		default:
			failed = append(failed, fmt.Sprintf("%s %s: %s", r.Store, orDash(r.Location), r.Detail))
		}
	}
	msg := strings.Join(failed, "\n")
	if handoff != nil {
		if msg != "" {
			msg += "\n"
		}
		msg += "the system trust store needs root; run:\n  " + hosts.Quote(handoff)
	}
	if msg == "" {
		return nil
	}
	return &exitError{code: 1, err: errors.New(msg)}
}
