package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/sites"
)

// version is set by the Makefile with -ldflags "-X main.version=...".
var version = "dev"

// IOStreams are the command's standard streams; tests use buffers.
type IOStreams struct {
	In       io.Reader
	Out, Err io.Writer
	// IsTerminal reports whether Out is a terminal.
	IsTerminal bool
}

func systemIO() *IOStreams {
	st, _ := os.Stdout.Stat()
	return &IOStreams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		IsTerminal: st != nil && st.Mode()&os.ModeCharDevice != 0}
}

// Factory hands commands what they need, lazily: the project, the database.
type Factory struct {
	IO   *IOStreams
	Opts sites.Options
	// Docker returns the Docker database finder, or nil when Docker is not
	// used. Set by docker.go.
	Docker func() sites.DockerFinder
	// Engine holds the engine flags of serve and the UI (set by
	// addEngineFlags in serve.go).
	Engine *engineFlags
	// DockerRunner makes the docker process runner (docs/docker.md, --runner
	// docker); nil until docker support sets it.
	DockerRunner func(ctx context.Context, p *sites.Project) (supervisor.Runner, error)

	once    sync.Once
	project *sites.Project
	projErr error

	// sourceMu guards source (set by Sites), noted and quietNotes.
	sourceMu sync.Mutex
	source   *sites.SourceInfo
	// noted are the database notes (sites.DB.Note) already printed:
	// each is printed once per run, not on every reload of the sites.
	noted map[string]bool
	// quietNotes is true while the terminal UI owns the screen: it shows
	// the note itself.
	quietNotes bool
}

// noteDB prints db's Note on stderr, once per run (see noted).
func (f *Factory) noteDB(db sites.DB) {
	if db.Note == "" {
		return
	}
	f.sourceMu.Lock()
	defer f.sourceMu.Unlock()
	if f.quietNotes || f.noted[db.Note] {
		return
	}
	if f.noted == nil {
		f.noted = map[string]bool{}
	}
	f.noted[db.Note] = true
	fmt.Fprintln(f.IO.Err, "siteplex: "+db.Note)
}

// quietDBNotes stops noteDB from printing (the UI shows the note itself).
func (f *Factory) quietDBNotes() {
	f.sourceMu.Lock()
	f.quietNotes = true
	f.sourceMu.Unlock()
}

func newFactory(io *IOStreams) *Factory {
	f := &Factory{IO: io}
	f.Docker = func() sites.DockerFinder { return dockerFinder(f) }
	f.DockerRunner = dockerRunnerFor
	return f
}

// Project loads the project once.
func (f *Factory) Project() (*sites.Project, error) {
	f.once.Do(func() {
		f.project, f.projErr = sites.Load(f.Opts)
		if f.projErr == nil {
			for _, w := range f.project.Env.Warnings {
				fmt.Fprintln(f.IO.Err, "siteplex: warning:", w)
			}
		}
	})
	return f.project, f.projErr
}

// RealProject is Project for the commands that read the sites or run the
// engine: a folder that is no project (see sites.Project.NeedProject) is an
// error, so that nothing is created there and nothing waits for a
// database that will never come. doctor and the engine's configuration
// load the project with Project.
func (f *Factory) RealProject() (*sites.Project, error) {
	p, err := f.Project()
	if err != nil {
		return nil, err
	}
	if err := p.NeedProject(); err != nil {
		return nil, err
	}
	return p, nil
}

// Sites loads the project's sites: from its database when one is found,
// merged with siteplex.toml. Without any database, declared sites alone are
// used when there are some. A folder that is no project is an error (see
// RealProject).
func (f *Factory) Sites(ctx context.Context) (*sites.Project, []sites.Site, *sites.DB, error) {
	p, err := f.RealProject()
	if err != nil {
		return nil, nil, nil, err
	}
	list, info, db, err := p.ReadSites(ctx, f.Docker())
	if db != nil {
		f.noteDB(*db)
	}
	if err == nil && db != nil {
		f.sourceMu.Lock()
		f.source = &info
		f.sourceMu.Unlock()
	}
	return p, list, db, err
}

// Source is where the sites Sites read last came from (nil before, or
// without a database).
func (f *Factory) Source() *sites.SourceInfo {
	f.sourceMu.Lock()
	defer f.sourceMu.Unlock()
	return f.source
}

// exitError carries an explicit exit status with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// silentExit ends with code without printing anything more.
type silentExit int

func (e silentExit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// flagError is a usage mistake found by cobra.
type flagError struct{ error }

func newRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "siteplex",
		Short: "Local development companion for multi-site Django projects",
		Long: `siteplex lists a Django project's sites from its database, forces a SITE_ID,
keeps a managed block of /etc/hosts entries and runs a Host-routing proxy
with one dev process per site — in a terminal UI, or headless.

Run it in the project's root (where manage.py is).`,
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
		// No command: the terminal UI.
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUI(cmd, f, args)
		},
	}
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.Err)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return flagError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&f.Opts.Project, "project", "", "project root (default: the folder with manage.py, from the current one up)")
	pf.StringVar(&f.Opts.Config, "config", "", "config file (default: siteplex.toml in the project root)")
	pf.StringVar(&f.Opts.EnvFile, "env-file", "", "env file (default: .env-local, else .env)")
	pf.StringVar(&f.Opts.DB, "db", "", "database URL: "+sites.DatabaseURLForms)
	pf.StringVar(&f.Opts.HostsFile, "hosts-file", "", "hosts file to manage (default /etc/hosts, env SITEPLEX_HOSTS_FILE)")
	pf.StringVar(&f.Opts.DomainFormat, "domain-format", "", "local domain format: {slug}, {id}, {} (default {slug}.localhost)")
	pf.StringVar(&f.Opts.Python, "python", "", "Python that runs the project: asked about its settings, and runs the default command (default: config python, else .venv/bin/python, venv/bin/python, python3)")
	for _, c := range commands(f) {
		root.AddCommand(c)
	}
	addEngineFlags(root, f)
	return root
}

// commands lists the subcommands; each lives in its own file.
func commands(f *Factory) []*cobra.Command {
	return []*cobra.Command{
		newCmdSites(f),
		newCmdHosts(f),
		newCmdServe(f),
		newCmdUI(f),
		newCmdUse(f),
		newCmdDomains(f),
		newCmdDoctor(f),
		newCmdTrust(f),
		newCmdUntrust(f),
		newCmdDemo(f),
		newCmdDemoSite(f),
		newCmdDockerReaper(f),
	}
}

// execute runs the CLI and maps errors to exit codes (README.md, "Commands").
func execute(ctx context.Context, f *Factory, args []string) int {
	root := newRootCmd(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return exitCode(f.IO.Err, err)
}

// exitCode prints err and returns its exit status: 0 success, 2 usage
// error, 1 anything else.
func exitCode(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var se silentExit
	if errors.As(err, &se) {
		return int(se)
	}
	var fe flagError
	code := 1
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.As(err, &fe), sites.IsUsage(err), isCobraUsage(err):
		code = 2
	}
	fmt.Fprintln(w, "siteplex:", err)
	if code == 2 && (errors.As(err, &fe) || isCobraUsage(err)) {
		fmt.Fprintln(w, "Run 'siteplex --help' for usage.")
	}
	return code
}

func isCobraUsage(err error) bool {
	m := err.Error()
	return strings.HasPrefix(m, "unknown command") || strings.HasPrefix(m, "accepts ") ||
		strings.HasPrefix(m, "requires at least") || strings.HasPrefix(m, "unknown flag") ||
		strings.HasPrefix(m, "invalid argument")
}
