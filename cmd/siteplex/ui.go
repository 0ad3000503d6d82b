package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/hosts"
	"github.com/siteplex/siteplex/sites"
	"github.com/siteplex/siteplex/tui"
)

func newCmdUI(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Open the terminal UI (the default command)",
		Long: `Open the terminal UI over the engine (the same proxy and processes as
'siteplex serve'): the sites with their process and hosts state, and the logs,
requests and facts of the selected one. 'siteplex' without a command does the
same. It takes every flag of serve.

Keys: j/k move, / filter, enter force (use) the site, h toggle its hosts
entries, H all of them, s start/stop, r restart, R reload the sites, tab
switch pane, f follow logs, o open in the browser, ? all keys, q quit.`,
		Example: `  $ siteplex
  $ siteplex ui --listen 127.0.0.1:8080 --start all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runUI(cmd, f, args) },
	}
	addEngineFlags(cmd, f)
	return cmd
}

// runUI runs the terminal UI over the project's engine until the user
// quits, then stops every process it started.
func runUI(cmd *cobra.Command, f *Factory, args []string) error {
	if len(args) > 0 {
		return sites.Usagef("unknown command %q for siteplex: run 'siteplex --help'", args[0])
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGHUP)
	defer stop()
	if err := needTerminal(f); err != nil {
		return err
	}
	p, err := f.Project()
	if err != nil {
		return err
	}
	// One engine per project: when `siteplex serve` runs for it, the UI
	// shows and drives that engine instead of starting another.
	if ef, err := devproxy.ReadEngineFile(p.StateDir()); err == nil {
		return uiAttach(ctx, f, p, ef)
	}
	cfg, err := f.EngineConfig(ctx)
	if err != nil {
		return err
	}
	if err := p.NeedProject(); err != nil {
		return err
	}
	cfg.Kind = devproxy.KindUI
	return uiRun(ctx, f, p, cfg, uiExtras{})
}

// uiAttach runs the UI over the engine of another running siteplex
// (`siteplex serve`, or another UI: ef); quitting leaves that engine and
// its processes running.
func uiAttach(ctx context.Context, f *Factory, p *sites.Project, ef *devproxy.EngineFile) error {
	r := devproxy.NewRemote(ef)
	defer r.Close(context.Background())
	if err := r.Start(ctx); err != nil {
		return fmt.Errorf("%s runs this project's engine but does not answer: %w", ef.Describe(), err)
	}
	notice, attached := attachNotice(ef, engineFlagsOf(f).given())
	logf, closeLog := uiLog(p)
	defer closeLog()
	return uiProgram(ctx, f, p, r, r.Status().Mode, uiExtras{notice: notice, attached: attached}, logf)
}

// attachNotice is what an attached UI says first (flags: engine flags
// were given, which do not apply) and the header's name for the engine
// ("serve pid 4242", "ui pid 4242", "pid 4242").
func attachNotice(ef *devproxy.EngineFile, flags bool) (notice, attached string) {
	notice = "attached to the engine of " + ef.Describe() + "; q leaves it running"
	if ef.Kind == devproxy.KindUI {
		notice += " (it stops when that UI quits)"
	}
	if flags {
		notice = ef.Describe() + " runs this project's engine: the engine flags given here do not apply"
	}
	attached = fmt.Sprintf("pid %d", ef.PID)
	if ef.Kind != "" {
		attached = ef.Kind + " " + attached
	}
	return notice, attached
}

// uiExtras are what the demo adds to a UI run.
type uiExtras struct {
	// started is an engine already started (the demo binds before the UI).
	started *devproxy.Engine
	// notice is shown in the status line at first.
	notice string
	// noSudo is true when the hosts file is the user's own (the demo's).
	noSudo bool
	// hostsBackups is where hosts file backups go ("" = the user's
	// state folder).
	hostsBackups string
	// attached names the engine of another process the UI shows.
	attached string
}

// needTerminal refuses to draw a UI into a pipe.
func needTerminal(f *Factory) error {
	in, ok := f.IO.In.(*os.File)
	if !f.IO.IsTerminal || !ok || !term.IsTerminal(in.Fd()) {
		return errors.New("the terminal UI needs a terminal: run 'siteplex serve' for the engine without a UI, or 'siteplex sites' to list the sites")
	}
	return nil
}

// uiRun starts the engine (unless x.started), runs the UI and closes the
// engine when the UI ends.
func uiRun(ctx context.Context, f *Factory, p *sites.Project, cfg devproxy.Config, x uiExtras) error {
	logf, closeLog := uiLog(p)
	defer closeLog()
	e := x.started
	if e == nil {
		cfg.Log = logf
		var err error
		if e, err = newEngine(cfg); err != nil {
			return err
		}
	}
	if pre := e.Status().Preload; pre != nil && !pre.On && x.notice == "" {
		x.notice = "cannot preload: " + pre.Reason + "; site processes start the plain way"
	}
	runErr := uiProgram(ctx, f, p, e, cfg.Mode, x, logf)

	// Stop what the UI started; say so, as it can take a few seconds.
	if n := runningCount(e.Status()); n > 0 {
		fmt.Fprintf(f.IO.Err, "siteplex: stopping %d process(es)…\n", n)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := e.Close(cctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("stopping the engine: %w", err)
	}
	return runErr
}

// uiProgram runs the terminal UI over engine until the user quits. While
// it runs, the standard logger (net/http's own warnings) writes to logf,
// not over the screen.
func uiProgram(ctx context.Context, f *Factory, p *sites.Project, engine tui.Engine, mode devproxy.Mode, x uiExtras, logf io.Writer) error {
	prev := log.Writer()
	log.SetOutput(logf)
	defer log.SetOutput(prev)
	f.quietDBNotes()
	database, note := dbDisplay(p)
	if x.notice == "" {
		x.notice = note
	}
	opt := tui.Options{
		Engine:   engine,
		Project:  p.Name,
		Database: database,
		Mode:     mode,
		Hosts:    uiHosts(f, p, x),
		WriteForced: func(ctx context.Context, id int64) error {
			return writeForcedSiteID(ctx, p, id)
		},
		OpenURL:      openURL,
		HTTPSPermits: f.caPermits(),
		Renderer:     lipgloss.NewRenderer(f.IO.Out),
		NoStart:      x.started != nil || x.attached != "",
		Notice:       x.notice,
		Attached:     x.attached,
	}
	return tui.Run(ctx, opt, f.IO.In, f.IO.Out)
}

// runningCount counts the processes that run or start (one shared process
// in single mode counts once).
func runningCount(st devproxy.Status) int {
	n := 0
	pids := map[int]bool{}
	for _, s := range st.Sites {
		if s.State != devproxy.Running && s.State != devproxy.Starting {
			continue
		}
		if s.PID > 0 {
			if pids[s.PID] {
				continue
			}
			pids[s.PID] = true
		}
		n++
	}
	return n
}

// uiLog is where the engine writes its diagnostics while the UI owns the
// terminal: .siteplex/siteplex.log (discarded when it cannot be opened).
func uiLog(p *sites.Project) (io.Writer, func()) {
	dir, err := p.EnsureStateDir()
	if err != nil {
		return io.Discard, func() {}
	}
	fh, err := os.OpenFile(filepath.Join(dir, "siteplex.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return io.Discard, func() {}
	}
	return fh, func() { fh.Close() }
}

// dbDisplay says where the sites come from, for the header, without
// touching the database or Docker, and the database's Note ("" when none:
// a DATABASE_URL set aside for the settings' database).
func dbDisplay(p *sites.Project) (display, note string) {
	db, ok, err := p.DatabaseSource()
	switch {
	case err != nil:
		return "database: " + err.Error(), ""
	case !ok && len(p.Config.Sites) > 0:
		return "sites from " + filepath.Base(p.Config.Path), ""
	case !ok:
		return "no database", ""
	case db.Driver == sites.SQLite:
		if rel, err := filepath.Rel(p.Root, db.Path); err == nil && !strings.HasPrefix(rel, "..") {
			return "sqlite " + rel, db.Note
		}
	}
	return db.Display(), db.Note
}

// uiHosts manages the project's block in its hosts file; a change that
// needs root runs `sudo siteplex --project ROOT hosts apply|remove --host
// NAME…`: the names themselves, so that root needs no database and no
// database URL (with its password) ever reaches an argv.
func uiHosts(f *Factory, p *sites.Project, x uiExtras) tui.Hosts {
	mode, err := hostsNamesMode(&hostsOptions{}, p)
	if err != nil {
		mode = "domain"
	}
	h := &tui.HostsFile{
		File:      p.HostsFile,
		Project:   hostsKey(p),
		BackupDir: x.hostsBackups,
		Names: func(s *sites.Site) []string {
			var out []string
			for _, n := range hostsSiteNames(s, mode) {
				out = append(out, n.raw)
			}
			return out
		},
	}
	if !x.noSudo {
		h.SudoArgv = func(verb string, names []string) []string {
			args := []string{"hosts", verb, "--project", p.Root, "--hosts-file", p.HostsFile}
			if f.Opts.Config != "" {
				args = append(args, "--config", f.Opts.Config)
			}
			for _, n := range names {
				args = append(args, "--host", n)
			}
			return hosts.SudoArgv(args...)
		}
	}
	return h
}

// writeForcedSiteID writes SITE_ID=id into the project's env file (0
// removes the line), changing nothing else: the same edit as `siteplex use`.
// A negative id (a django-pgschemas static tenant) is never written: Django
// knows no such SITE_ID; the engine serves the tenant on localhost alone.
func writeForcedSiteID(ctx context.Context, p *sites.Project, id int64) error {
	if id < 0 {
		return nil
	}
	var val *string
	if id != 0 {
		v := strconv.FormatInt(id, 10)
		val = &v
	}
	if _, err := sites.SaveEnvKey(ctx, p.Env.Path, "SITE_ID", val); err != nil {
		return fmt.Errorf("writing SITE_ID to %s: %w", p.Env.Path, err)
	}
	return nil
}

// openURL opens url in the browser without waiting for it.
func openURL(ctx context.Context, url string) error {
	name := "xdg-open"
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("no %s here: open %s yourself", name, url)
	}
	c := exec.Command(path, url)
	if err := c.Start(); err != nil {
		return fmt.Errorf("%s %s: %w", name, url, err)
	}
	go func() { _ = c.Wait() }()
	return nil
}
