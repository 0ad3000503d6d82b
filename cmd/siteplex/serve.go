package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/devproxy/demosite"
	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/sites"
)

// engineFlags are the flags of serve (and of the UI, which runs the same
// engine). Each remembers whether it was given, so siteplex.toml fills in
// only what the command line left out.
type engineFlags struct {
	Listen      []string
	listenSet   bool
	Mode        optString
	Start       optString
	BootTimeout optDuration
	IdleTimeout optDuration
	MaxRunning  optInt
	Command     optString
	Runner      optString
	RewriteHost optString
	NoWatch     bool
	Preload     optBool
	// HTTPS are the --https values ("off" or addresses); HTTPSRedirect
	// is --https-redirect (docs/https.md).
	HTTPS         []string
	httpsSet      bool
	HTTPSRedirect optBool
}

// given reports whether any engine flag was given on the command line.
func (ef *engineFlags) given() bool {
	return ef.listenSet || ef.Mode.set || ef.Start.set || ef.BootTimeout.set || ef.IdleTimeout.set ||
		ef.MaxRunning.set || ef.Command.set || ef.Runner.set || ef.RewriteHost.set || ef.NoWatch || ef.Preload.set ||
		ef.httpsSet || ef.HTTPSRedirect.set
}

// optString, optDuration and optInt are flag values that know whether
// they were set.
type optString struct {
	v   string
	set bool
}

func (o *optString) String() string     { return o.v }
func (o *optString) Set(s string) error { o.v, o.set = s, true; return nil }
func (o *optString) Type() string       { return "string" }

type optDuration struct {
	v   time.Duration
	set bool
}

func (o *optDuration) String() string {
	if !o.set {
		return ""
	}
	return o.v.String()
}

func (o *optDuration) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	o.v, o.set = d, true
	return nil
}
func (o *optDuration) Type() string { return "duration" }

type optInt struct {
	v   int
	set bool
}

func (o *optInt) String() string {
	if !o.set {
		return ""
	}
	return strconv.Itoa(o.v)
}

func (o *optInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a whole number ≥ 0", s)
	}
	o.v, o.set = n, true
	return nil
}
func (o *optInt) Type() string { return "int" }

// listenValue appends to engineFlags.Listen and marks it set.
type listenValue struct{ ef *engineFlags }

func (l listenValue) String() string { return strings.Join(l.ef.Listen, ",") }
func (l listenValue) Set(s string) error {
	l.ef.Listen = append(l.ef.Listen, s)
	l.ef.listenSet = true
	return nil
}
func (l listenValue) Type() string { return "addr" }

// parseDuration is time.ParseDuration that also takes a bare "0".
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (examples: 90s, 15m, 1h, 0)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// shortDuration writes d the way a user types it: 60s, 15m, 1h30m.
func shortDuration(d time.Duration) string {
	if d%time.Minute != 0 || d <= time.Minute {
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
	s := strings.TrimSuffix(d.String(), "0s") // 15m0s → 15m, 1h0m0s → 1h0m
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// engineFlagsOf returns the factory's engine flags, making them once.
func engineFlagsOf(f *Factory) *engineFlags {
	if f.Engine == nil {
		f.Engine = &engineFlags{}
	}
	return f.Engine
}

// addEngineFlags adds the flags of serve to cmd (root and ui take them
// too); every command shares the factory's one engineFlags.
func addEngineFlags(cmd *cobra.Command, f *Factory) {
	ef := engineFlagsOf(f)
	fs := cmd.Flags()
	add := func(fs *pflag.FlagSet) {
		fs.Var(listenValue{ef}, "listen", "address to listen on, repeatable (default 127.0.0.1:80 and [::1]:80; :0 picks a free port)")
		fs.Var(&ef.Mode, "mode", "per-site (one process per site) or single (one process for all) (default "+string(supervisor.DefaultMode)+")")
		fs.Var(&ef.Start, "start", "lazy (start a site's process on its first request) or all (default lazy)")
		fs.Var(&ef.BootTimeout, "boot-timeout", "how long requests wait for a starting process (default "+shortDuration(supervisor.DefaultBootTimeout)+")")
		fs.Var(&ef.IdleTimeout, "idle-timeout", "stop a process after this long without requests; 0 = never (default "+shortDuration(supervisor.DefaultIdleTimeout)+")")
		fs.Var(&ef.MaxRunning, "max-running", "most processes running at once, the least recently used stops first; 0 = no limit (default 0)")
		fs.Var(&ef.Command, "command", "process command, split like a shell line but never run by one; placeholders {port} {site_id} {slug} {domain} {root} (default <python> manage.py runserver 127.0.0.1:{port} --noreload)")
		fs.Var(&ef.Runner, "runner", "local (processes) or docker (containers from the compose web service) (default local)")
		fs.BoolVar(&ef.NoWatch, "no-watch", false, "do not restart processes when *.py files change")
		fs.Var(&ef.RewriteHost, "rewrite-host", "auto, always or never: send a site's canonical host upstream for its local names; auto does for frameworks that pick the site from the Host (Wagtail, django-tenants, django-pgschemas, django-multisite, Mezzanine) (default auto; config rewrite_host)")
		fs.Var(&ef.Preload, "preload", "fork each site's process from one warm Django parent: per-site mode, local runner, runserver only; --preload=false turns off preload = true (default false)")
		fs.Lookup("preload").NoOptDefVal = "true"
		fs.Var(httpsValue{ef}, "https", "HTTPS address, repeatable, or off (default 127.0.0.1:443 and [::1]:443 once siteplex trust made the local CA; off without it)")
		fs.Var(&ef.HTTPSRedirect, "https-redirect", "redirect plain-HTTP requests for the sites' names to https (the index and API stay on http)")
		fs.Lookup("https-redirect").NoOptDefVal = "true"
		fs.BoolVar(&f.Opts.NoOverlay, "no-overlay", false, "leave the project's settings as they are: no per-site SITE_ID, ALLOWED_HOSTS or proxy header from siteplex's overlay (only its identity probe stays; config overlay = false)")
	}
	add(fs)
}

// EngineConfig builds the engine's configuration from the flags, then
// siteplex.toml, then the defaults. The UI calls it too.
func (f *Factory) EngineConfig(ctx context.Context) (devproxy.Config, error) {
	ef := engineFlagsOf(f)
	p, err := f.Project()
	if err != nil {
		return devproxy.Config{}, err
	}
	c := p.Config
	if c == nil {
		c = &sites.Config{}
	}
	cfg := devproxy.Config{Config: supervisor.Config{Project: p, Watch: !ef.NoWatch}}
	cfg.Listen = c.Listen
	if ef.listenSet {
		cfg.Listen = ef.Listen
	}
	for _, a := range cfg.Listen {
		if !strings.Contains(a, ":") {
			return cfg, sites.Usagef("listen address %q needs a port, like 127.0.0.1:8080 or :8080", a)
		}
	}
	mode := pick(ef.Mode, c.Mode)
	switch mode {
	case "":
		cfg.Mode = supervisor.DefaultMode
	case string(supervisor.PerSite), string(supervisor.Single):
		cfg.Mode = supervisor.Mode(mode)
	default:
		return cfg, sites.Usagef("unknown mode %q: use per-site or single", mode)
	}
	switch start := pick(ef.Start, c.Start); start {
	case "", "lazy":
	case "all":
		cfg.StartAll = true
	default:
		return cfg, sites.Usagef("unknown start %q: use lazy or all", start)
	}
	if cfg.BootTimeout, err = pickDuration(ef.BootTimeout, c.BootTimeout, "boot_timeout", supervisor.DefaultBootTimeout); err != nil {
		return cfg, err
	}
	if cfg.BootTimeout == 0 {
		return cfg, sites.Usagef("boot timeout must be more than 0")
	}
	if cfg.IdleTimeout, err = pickDuration(ef.IdleTimeout, c.IdleTimeout, "idle_timeout", supervisor.DefaultIdleTimeout); err != nil {
		return cfg, err
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = supervisor.IdleNever // "0" on the command line or in the config
	}
	switch {
	case ef.MaxRunning.set:
		cfg.MaxRunning = ef.MaxRunning.v
	case c.MaxRunning != nil:
		if *c.MaxRunning < 0 {
			return cfg, sites.Usagef("config %s: max_running must be ≥ 0", c.Path)
		}
		cfg.MaxRunning = *c.MaxRunning
	}
	if ef.Command.set {
		argv, err := splitCommand(ef.Command.v)
		if err != nil {
			return cfg, sites.Usagef("--command: %v", err)
		}
		cfg.Command = argv
	} else if len(c.Process.Command) > 0 {
		cfg.Command = c.Process.Command
	}
	if cfg.RewriteHost, err = devproxy.ParseRewriteHost(pick(ef.RewriteHost, c.RewriteHost)); err != nil {
		return cfg, err
	}
	if p.IsDjango {
		// The default command runs the project's Python (--python, the
		// config key python, else the usual search).
		py, from, err := p.Python()
		switch {
		case err == nil:
			cfg.Python = py
		case from != "":
			return cfg, sites.Usagef("%v", err)
		}
	}
	switch runner := pick(ef.Runner, c.Process.Runner); runner {
	case "", "local":
		cfg.Runner = supervisor.LocalRunner()
	case "docker":
		cfg.NoOverlay = "the docker runner: the overlay's folder is not inside the container"
		if f.DockerRunner == nil {
			return cfg, errors.New("docker runner not available in this build")
		}
		if cfg.Runner, err = f.DockerRunner(ctx, p); err != nil {
			return cfg, err
		}
	default:
		return cfg, sites.Usagef("unknown runner %q: use local or docker", runner)
	}
	switch {
	case ef.Preload.set:
		cfg.Preload = ef.Preload.v
	case c.Preload != nil:
		cfg.Preload = *c.Preload
	}
	if cfg.HTTPS, err = f.httpsConfig(c); err != nil {
		return cfg, err
	}
	cfg.LoadSites = func(ctx context.Context) ([]sites.Site, error) {
		_, list, _, err := f.Sites(ctx)
		return list, err
	}
	return cfg, nil
}

func pick(o optString, conf string) string {
	if o.set {
		return strings.TrimSpace(o.v)
	}
	return strings.TrimSpace(conf)
}

func pickDuration(o optDuration, conf, key string, def time.Duration) (time.Duration, error) {
	if o.set {
		return o.v, nil
	}
	if conf == "" {
		return def, nil
	}
	d, err := parseDuration(conf)
	if err != nil {
		return 0, sites.Usagef("config key %s: %v", key, err)
	}
	return d, nil
}

// splitCommand splits a command line into argv the way a POSIX shell would
// split words ('single', "double" quotes and backslash escapes), without
// expanding anything: the command is never run through a shell.
func splitCommand(s string) ([]string, error) {
	var (
		argv  []string
		cur   strings.Builder
		inTok bool
		quote byte
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
				i++
				cur.WriteByte(s[i])
			default:
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inTok = c, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inTok = true
		case c == ' ' || c == '\t' || c == '\n':
			if inTok {
				argv = append(argv, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c quote in %q", quote, s)
	}
	if inTok {
		argv = append(argv, cur.String())
	}
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	return argv, nil
}

func newCmdServe(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy and the site processes headless",
		Long: `Run siteplex's engine without the terminal UI: a Host-routing proxy on port 80
in front of one dev process per site (or one shared process with --mode single),
started on each site's first request. SIGINT or SIGTERM stops it gracefully.

Routing: a request's Host (lower-cased, port stripped) is matched against each
site's domain, aliases, real domain, local domain and *.local domain.
localhost goes to the site chosen with ?siteplex-site=SLUG, else the forced
SITE_ID, else the index page at http://siteplex.localhost/.

--preload (or preload = true in siteplex.toml) forks each site's process from
one warm Django parent instead of starting runserver per site: faster starts
and reloads, shared memory (docs/preload.md).

HTTPS: once 'siteplex trust' has made the local CA, serve also listens on
127.0.0.1:443 and [::1]:443 (--https ADDR to choose, --https off for none),
with certificates issued at the handshake for the names it routes, and
HTTP/2. --https-redirect sends plain-HTTP requests for the sites to https.`,
		Example: `  siteplex serve
  siteplex serve --listen 127.0.0.1:8080 --https 127.0.0.1:8443 --start all
  siteplex serve --https off
  siteplex serve --mode single --command '/usr/bin/python3 manage.py runserver 127.0.0.1:{port} --noreload'
  siteplex serve --preload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serveRun(cmd.Context(), f)
		},
	}
	addEngineFlags(cmd, f)
	return cmd
}

// engineGCPercent is the garbage collector's pace in a process that runs
// the engine. The Go default (100) collects after every few MiB of garbage,
// a collection every few hundred proxied requests; at 200 the engine spends
// measurably less CPU per request for a few MiB more RSS under load, small
// next to one Django process (figures in docs/engine.md#performance).
const engineGCPercent = 200

// newEngine is devproxy.New for this process, which will run the engine:
// it sets the collector's pace first, unless the user set GOGC.
func newEngine(cfg devproxy.Config) (*devproxy.Engine, error) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(engineGCPercent)
	}
	return devproxy.New(cfg)
}

// serveRun runs the engine until the context ends (SIGINT/SIGTERM), then
// shuts it down gracefully.
func serveRun(ctx context.Context, f *Factory) error {
	p, err := f.Project()
	if err != nil {
		return err
	}
	// One engine per project: never a second one next to a running one
	// (Start checks again, atomically, when it claims engine.json).
	if ef, err := devproxy.ReadEngineFile(p.StateDir()); err == nil {
		return &devproxy.RunningError{Engine: *ef, Dir: p.StateDir()}
	}
	cfg, err := f.EngineConfig(ctx)
	if err != nil {
		return err
	}
	if err := p.NeedProject(); err != nil {
		return err
	}
	cfg.Log = f.IO.Err
	cfg.Kind = devproxy.KindServe
	e, err := newEngine(cfg)
	if err != nil {
		return err
	}
	// Only what printEvent prints: a request or log event would wake this
	// loop for nothing.
	events, cancel := e.Subscribe(devproxy.EventState, devproxy.EventError)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		_ = e.Close(context.Background())
		return err
	}
	for _, a := range e.Addrs() {
		fmt.Fprintf(f.IO.Err, "siteplex: listening on %s\n", a)
	}
	for _, a := range e.HTTPSAddrs() {
		fmt.Fprintf(f.IO.Err, "siteplex: listening on https://%s\n", a)
	}
	if pre := e.Status().Preload; pre != nil && !pre.On {
		fmt.Fprintf(f.IO.Err, "siteplex: cannot preload: %s; site processes start the plain way\n", pre.Reason)
	}
	done := make(chan error, 1)
	go func() { done <- e.Wait() }()
	last := map[string]string{}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-done:
			return err
		case ev, ok := <-events:
			if !ok {
				break loop
			}
			if ev.Kind == devproxy.EventState {
				key := string(ev.Site.State) + ev.Site.Identity.Mark()
				if last[ev.Site.Slug] == key {
					continue
				}
				last[ev.Site.Slug] = key
			}
			printEvent(f, ev)
		}
	}
	fmt.Fprintln(f.IO.Err, "siteplex: stopping")
	sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer scancel()
	if err := e.Close(sctx); err != nil {
		return err
	}
	fmt.Fprintln(f.IO.Err, "siteplex: stopped")
	return nil
}

// printEvent writes the headless engine's state changes and errors to
// stderr (process output goes to .siteplex/logs/<slug>.log).
func printEvent(f *Factory, ev devproxy.Event) {
	switch ev.Kind {
	case devproxy.EventState:
		s := ev.Site
		switch s.State {
		case devproxy.Running:
			switch id := s.Identity; {
			case id != nil && id.Checked && id.OK:
				fmt.Fprintf(f.IO.Err, "siteplex: %s identity %s\n", s.Slug, id.Detail)
			case id != nil && id.Checked:
				// The mismatch itself comes as an error event.
			default:
				fmt.Fprintf(f.IO.Err, "siteplex: %s running (pid %d, port %d)\n", s.Slug, s.PID, s.Port)
			}
		case devproxy.Crashed:
			code := "?"
			if s.LastExit != nil {
				code = strconv.Itoa(*s.LastExit)
			}
			fmt.Fprintf(f.IO.Err, "siteplex: %s exited with status %s\n", s.Slug, code)
		case devproxy.Backoff:
			fmt.Fprintf(f.IO.Err, "siteplex: %s keeps crashing; waiting until %s\n", s.Slug, s.BackoffUntil.Format(time.TimeOnly))
		case devproxy.Starting, devproxy.Stopped:
			fmt.Fprintf(f.IO.Err, "siteplex: %s %s\n", s.Slug, s.State)
		}
	case devproxy.EventError:
		fmt.Fprintf(f.IO.Err, "siteplex: %v\n", ev.Err)
	case devproxy.EventLog, devproxy.EventRequest, devproxy.EventSites:
	}
}

func newCmdDemoSite(f *Factory) *cobra.Command {
	var (
		port   int
		host   string
		site   string
		siteID string
	)
	cmd := &cobra.Command{
		Use:   "demo-site",
		Short: "Run siteplex's tiny built-in site server (used by the demo)",
		Long: `A tiny web server standing in for a Django dev server: it answers with its
SITE_ID, site, Host and X-Forwarded-For (JSON at /whoami, HTML at /), echoes
uploads at /upload, streams slowly at /stream and echoes WebSocket messages
at /ws. It listens on --port, else $PORT, else 8000.`,
		Example: `  siteplex demo-site --port 8001 --site gh --site-id 2
  siteplex serve --command 'siteplex demo-site --port {port} --site {slug} --site-id {site_id}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("port") {
				if v := os.Getenv("PORT"); v != "" {
					n, err := strconv.Atoi(v)
					if err != nil || n < 0 || n > 65535 {
						return sites.Usagef("PORT=%q is not a port number", v)
					}
					port = n
				}
			}
			if !cmd.Flags().Changed("site-id") {
				siteID = os.Getenv("SITE_ID")
			}
			addr := fmt.Sprintf("%s:%d", host, port)
			return demosite.Run(cmd.Context(), addr, demosite.Options{SiteID: siteID, Site: site}, func(a string) {
				fmt.Fprintf(f.IO.Err, "demo-site: %s listening on %s\n", site, a)
			})
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&port, "port", 8000, "port to listen on (default $PORT, else 8000)")
	fs.StringVar(&host, "host", "127.0.0.1", "address to listen on")
	fs.StringVar(&site, "site", "demo", "site name or slug to report")
	fs.StringVar(&siteID, "site-id", "", "SITE_ID to report (default $SITE_ID)")
	return cmd
}
