package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/siteplex/siteplex/internal/doctor"
	"github.com/siteplex/siteplex/internal/tlsca"
	"github.com/siteplex/siteplex/sites"
)

type doctorOptions struct {
	JSON   bool
	Listen []string
	// HTTPS are the --https values: addresses, or "off".
	HTTPS []string
}

func newCmdDoctor(f *Factory) *cobra.Command {
	opts := &doctorOptions{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the set-up: project, database, Django settings, ports 80 and 443, hosts file, Docker, Python, *.localhost, HTTPS",
		Long: `Check everything siteplex needs and say how to fix what is missing:
the project folder, siteplex.toml and the env file, the database and its tables
(and where siteplex found it), what the project's Django says about itself (the
settings module, the SITE_ID kind, ALLOWED_HOSTS against the routed names, the
site frameworks, the overlay), Python with Django and manage.py, the proxy's port
(default 127.0.0.1:80 and [::1]:80) and HTTPS port (127.0.0.1:443 and [::1]:443
once the local CA exists), the hosts file, Docker, *.localhost
resolution, and the local HTTPS CA (there, its expiry, which stores trust it).

It changes nothing. Exit status 1 when any check fails (warnings don't count).`,
		Example: `  $ siteplex doctor
  $ siteplex doctor --listen 127.0.0.1:8080 --https 127.0.0.1:8443
  $ siteplex doctor --json | jq '.checks[] | select(.status != "ok")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return doctorRun(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"ok": bool, "checks": [{"name", "status", "detail", "fix"}]}`)
	cmd.Flags().StringArrayVar(&opts.Listen, "listen", nil, "proxy address to check (repeatable; default: config listen, else 127.0.0.1:80 and [::1]:80)")
	cmd.Flags().StringArrayVar(&opts.HTTPS, "https", nil, "HTTPS address to check (repeatable), or off (default: config https, else 127.0.0.1:443 and [::1]:443 once the local CA exists)")
	return cmd
}

func doctorRun(ctx context.Context, f *Factory, opts *doctorOptions) error {
	rep := doctor.NewReport(doctorChecks(ctx, f, opts))
	if opts.JSON {
		if err := writeJSON(f.IO.Out, rep); err != nil {
			return err
		}
	} else {
		printDoctor(f.IO.Out, rep)
	}
	if !rep.OK {
		return silentExit(1)
	}
	return nil
}

// doctorChecks runs every check, in the documented order. A project that
// fails to load is reported by the config or env_file check, and the other
// checks still run with what could be loaded.
func doctorChecks(ctx context.Context, f *Factory, opts *doctorOptions) []doctor.Check {
	getenv := f.Opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	cwd := f.Opts.Cwd
	if cwd == "" {
		cwd, _ = os.Getwd()
	}
	var checks []doctor.Check
	root, err := sites.FindRoot(f.Opts.Project, cwd)
	if err != nil {
		checks = append(checks, doctor.Check{Name: doctor.NameProject, Status: doctor.Fail, Detail: err.Error(),
			Fix: "pass --project DIR naming the Django project's folder"})
	} else {
		checks = append(checks, doctor.Project(root))
	}

	p, configErr, envCheck := loadForDoctor(f.Opts)
	if p == nil {
		skipped := func(name string) doctor.Check {
			return doctor.Check{Name: name, Status: doctor.Fail, Detail: "not checked: the project could not be loaded", Fix: "fix the project check above first"}
		}
		checks = append(checks, doctor.Config(nil, configErr))
		if envCheck != nil {
			checks = append(checks, *envCheck)
		} else {
			checks = append(checks, skipped(doctor.NameEnvFile))
		}
		checks = append(checks, skipped(doctor.NameDatabase), skipped(doctor.NameSettings), skipped(doctor.NameSiteID),
			skipped(doctor.NameAllowedHosts), skipped(doctor.NameFrameworks), skipped(doctor.NameOverlay), skipped(doctor.NamePython))
		hostsFile := firstOf(f.Opts.HostsFile, getenv("SITEPLEX_HOSTS_FILE"), "/etc/hosts")
		return append(checks, machineChecks(ctx, getenv, hostsFile, opts.Listen, doctorHTTPS(opts, nil), false, nil)...)
	}
	checks = append(checks, doctor.Config(p, configErr))
	if envCheck == nil {
		c := doctor.EnvFile(p.Env.Path)
		envCheck = &c
	}
	checks = append(checks, *envCheck)

	dbCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	dbCheck, found := doctor.Database(dbCtx, p, f.Docker())
	cancel()
	checks = append(checks, dbCheck)
	list := found.Sites

	runner, command := p.Config.Process.Runner, p.Config.Process.Command
	pythonNeeded := runner != "docker" && (len(command) == 0 || strings.Contains(filepath.Base(command[0]), "python"))
	checks = append(checks, doctor.DjangoChecks(ctx, p, list, found.Source, pythonNeeded)...)
	checks = append(checks, doctor.PythonFor(ctx, p, pythonNeeded))

	listen := opts.Listen
	if len(listen) == 0 {
		listen = p.Config.Listen
	}
	dockerNeeded := runner == "docker"
	for _, c := range []string{"docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"} {
		if _, err := os.Stat(filepath.Join(p.Root, c)); err == nil {
			dockerNeeded = true
		}
	}
	var locals []string
	for _, s := range list {
		if s.Usable() && s.LocalDomain != "" && len(locals) < 3 {
			locals = append(locals, s.LocalDomain)
		}
	}
	return append(checks, machineChecks(ctx, getenv, p.HostsFile, listen, doctorHTTPS(opts, p.Config), dockerNeeded, locals)...)
}

// doctorHTTPS is the HTTPS setting doctor checks: --https, else the
// config's https key.
func doctorHTTPS(opts *doctorOptions, c *sites.Config) httpsSetting {
	if len(opts.HTTPS) > 0 {
		var h httpsSetting
		for _, a := range opts.HTTPS {
			if strings.EqualFold(strings.TrimSpace(a), "off") {
				h.Off = true
			} else {
				h.Addrs = append(h.Addrs, a)
			}
		}
		h.from = "--https"
		return h
	}
	if c != nil && c.HTTPS.Set() {
		return httpsSetting{HTTPSSetting: c.HTTPS, from: "https in " + configName(c)}
	}
	return httpsSetting{}
}

// httpsSetting is an https setting and where it came from.
type httpsSetting struct {
	sites.HTTPSSetting
	from string
}

// httpsPortCheck is the https_port check: the HTTPS addresses serve would
// bind, or why it binds none.
func httpsPortCheck(ctx context.Context, getenv func(string) string, h httpsSetting) doctor.Check {
	if h.Off {
		return doctor.HTTPSOff(h.from + " says off")
	}
	u, err := tlsca.CurrentUser(getenv)
	noCA := err != nil && getenv("SITEPLEX_CAROOT") == ""
	if !noCA {
		_, err = tlsca.Load(tlsca.Root(getenv, u))
		noCA = errors.Is(err, tlsca.ErrNoCA)
	}
	switch {
	case len(h.Addrs) > 0 && noCA:
		return doctor.Check{Name: doctor.NameHTTPSPort, Status: doctor.Fail,
			Detail: h.from + " names " + strings.Join(h.Addrs, ", ") + ", but there is no local CA: siteplex serve refuses to start",
			Fix:    "siteplex trust (creates the CA), or --https off"}
	case len(h.Addrs) > 0:
		return doctor.HTTPSPort(ctx, h.Addrs, false)
	case noCA:
		return doctor.HTTPSOff("no local CA yet (siteplex trust creates it; serve then also listens on " + strings.Join(doctor.DefaultHTTPS(), " and ") + ")")
	}
	return doctor.HTTPSPort(ctx, doctor.DefaultHTTPS(), true)
}

// machineChecks are the checks that need no project: ports, hosts file,
// Docker, resolution of siteplex.localhost and the given local domains.
func machineChecks(ctx context.Context, getenv func(string) string, hostsFile string, listen []string, https httpsSetting, dockerNeeded bool, locals []string) []doctor.Check {
	names := []string{"siteplex.localhost"}
	for _, n := range locals {
		if n != names[0] {
			names = append(names, n)
		}
	}
	checks := []doctor.Check{
		doctor.ProxyPort(ctx, listen),
		httpsPortCheck(ctx, getenv, https),
		doctor.HostsFile(hostsFile),
		doctor.Docker(ctx, getenv("DOCKER_HOST"), dockerNeeded),
		doctor.Resolution(ctx, net.DefaultResolver, names),
	}
	return append(checks, httpsChecks(ctx, getenv)...)
}

// httpsChecks are the checks of the local CA (docs/https.md): it exists
// and loads, its expiry, and which stores trust it.
func httpsChecks(ctx context.Context, getenv func(string) string) []doctor.Check {
	u, err := tlsca.CurrentUser(getenv)
	if err != nil && getenv("SITEPLEX_CAROOT") == "" {
		fail := doctor.Check{Name: doctor.NameHTTPSCA, Status: doctor.Fail, Detail: err.Error(), Fix: "set HOME, or SITEPLEX_CAROOT to the CA folder"}
		return []doctor.Check{fail, doctor.HTTPSCAExpiry(nil, time.Now()), doctor.HTTPSTrust(ctx, nil, u)}
	}
	caCheck, ca := doctor.HTTPSCA(tlsca.Root(getenv, u))
	return []doctor.Check{caCheck, doctor.HTTPSCAExpiry(ca, time.Now()), doctor.HTTPSTrust(ctx, ca, u)}
}

// loadForDoctor loads the project like every command does; when that fails
// it says why (an unreadable env file becomes the env_file check, anything
// else the config error) and loads it again without the broken part, so
// the other checks can run.
//
//lint:ignore ST1008 configErr is a finding to report, not the call's failure.
func loadForDoctor(opts sites.Options) (p *sites.Project, configErr error, envCheck *doctor.Check) {
	p, err := sites.Load(opts)
	if err == nil {
		return p, nil, nil
	}
	var pe *fs.PathError
	if strings.HasPrefix(err.Error(), "reading env file") && errors.As(err, &pe) {
		c := doctor.EnvFile(pe.Path)
		envCheck = &c
		opts.EnvFile = os.DevNull
		if p, err = sites.Load(opts); err == nil {
			return p, nil, envCheck
		}
	}
	configErr = err
	// Without the config file and with the default domain format.
	opts.Config, opts.DomainFormat = os.DevNull, sites.DefaultDomainFormat
	if p, err = sites.Load(opts); err != nil {
		return nil, configErr, envCheck
	}
	return p, configErr, envCheck
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// printDoctor prints the report for people: one line per check, the fix
// indented below a failed or warned check, and a summary.
func printDoctor(w io.Writer, rep doctor.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fails, warns := 0, 0
	for _, c := range rep.Checks {
		mark := "ok"
		switch c.Status {
		case doctor.Fail:
			mark, fails = "FAIL", fails+1
		case doctor.Warn:
			mark, warns = "warn", warns+1
		case doctor.OK:
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, strings.ReplaceAll(c.Name, "_", " "), clean(c.Detail))
		if c.Fix != "" && c.Status != doctor.OK {
			fmt.Fprintf(tw, "\t\tfix: %s\n", clean(c.Fix))
		}
	}
	tw.Flush()
	switch {
	case fails > 0:
		fmt.Fprintf(w, "%d %s failed, %d %s.\n", fails, plural(fails, "check", "checks"), warns, plural(warns, "warning", "warnings"))
	case warns > 0:
		fmt.Fprintf(w, "All checks passed, %d %s.\n", warns, plural(warns, "warning", "warnings"))
	default:
		fmt.Fprintln(w, "All checks passed.")
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
