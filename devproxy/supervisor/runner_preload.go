//go:build unix

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/siteplex/siteplex/devproxy/preload"
	"github.com/siteplex/siteplex/sites/django"
)

// The preload runner (docs/preload.md, "How siteplex uses it"): the
// supervisor's Runner when Config.Preload applies. It forks each site's
// process from a warm Django parent (package preload, which knows nothing
// of the supervisor: this package imports it, never the reverse) and
// starts the plain way, through the local runner, whatever cannot be
// forked, saying why.

// runserverArgs is the default command after its interpreter
// (docs/supervisor.md, "The command"), with the port's placeholder: the
// one command preload forks.
var runserverArgs = [...]string{"manage.py", "runserver", "127.0.0.1:{port}", "--noreload"}

// RunserverCommand is the default command (docs/supervisor.md, "The
// command") with python as its interpreter: `python manage.py runserver
// 127.0.0.1:{port} --noreload`, the one command --preload forks.
func RunserverCommand(python string) []string {
	return append([]string{python}, runserverArgs[:]...)
}

// isRunserver reports whether argv is `<python> manage.py runserver
// 127.0.0.1:<port> --noreload`; port is "{port}" for a template.
func isRunserver(argv []string, port string) bool {
	if len(argv) != len(runserverArgs)+1 || argv[0] == "" {
		return false
	}
	for i, a := range runserverArgs {
		if want := strings.ReplaceAll(a, "{port}", port); argv[i+1] != want {
			return false
		}
	}
	return true
}

// preloadRefusal says why preload cannot apply to cfg at all, "" when it
// can. New calls it when cfg.Preload is set.
func preloadRefusal(cfg Config) string {
	if cfg.Mode == Single {
		return "--mode single runs one process for every site; preload forks one process per site (use --mode per-site)"
	}
	if _, ok := cfg.Runner.(*localRunner); !ok {
		return "the sites run in containers (--runner docker); preload forks local processes"
	}
	tmpl := cfg.Command
	if len(tmpl) == 0 && cfg.Project != nil && cfg.Project.Config != nil {
		tmpl = cfg.Project.Config.Process.Command
	}
	if len(tmpl) > 0 && !isRunserver(tmpl, "{port}") {
		return fmt.Sprintf("the command is %s (--command or process.command in siteplex.toml); preload forks only Django's runserver, <python> %s",
			quoteArgv(tmpl), strings.Join(runserverArgs[:], " "))
	}
	return ""
}

// perSiteEnv are the variables that may differ between the sites of one
// warm parent: each forked child gets its own values (the fork request
// carries its whole environment). So do variables whose name ends in
// SITE_ID (SITE_ID, SITEPLEX_SITE_ID, MEZZANINE_SITE_ID, DJANGO_SITE_ID…)
// and any whose value is the site's id (the variable the project's
// SITE_ID follows, whatever its name). Any other difference means another
// parent: two settings modules never share one.
var perSiteEnv = map[string]bool{
	"PORT": true, procTokenEnv: true,
	"SITEPLEX_ALLOWED_HOSTS": true, "SITEPLEX_CANONICAL_HOSTS": true, "SITEPLEX_HOSTS_FILE": true,
}

// preloadRunner forks site processes from warm parents, one per
// interpreter, folder and environment (warmParent.fits).
type preloadRunner struct {
	local *localRunner
	s     *Supervisor // its logs, context, boot timeout, project, errors

	mu sync.Mutex // guards the fields below and the fields of every warmParent
	// current are the parents new processes fork from, oldest first.
	current []*warmParent
	// live are all parents whose process runs (current and stale).
	live map[*warmParent]bool
	// transient is why the last start went plain for a reason that is not
	// a parent's (it ended twice while forking); cleared by a fork.
	transient string
	// siteVar is what the project's Django says its SITE_ID follows, asked
	// once per code version (a code change replaces it).
	siteVar *siteVarCell
	closed  bool
	watches sync.WaitGroup // watch goroutines
}

// siteVariable is the variable the project's SITE_ID follows.
type siteVariable struct {
	name  string // "" when SITE_ID follows no variable
	known bool   // false when the project's Django could not be asked
}

// siteVarCell asks for the siteVariable once.
type siteVarCell struct {
	once sync.Once
	v    siteVariable
}

// warmParent is one parent, from its boot until it ended.
type warmParent struct {
	// python, dir, env and ids are what it booted with: the interpreter,
	// folder, environment (KEY → VALUE) and the ids of that site (its id,
	// SITEPLEX_SITE_ID).
	python, dir string
	env         map[string]string
	ids         []string
	ready       chan struct{} // closed when the boot ended: p or err is set
	// p is the running parent (nil when the boot failed).
	p *preload.Parent
	// err says why this parent could not boot, or can no longer fork.
	err     *preload.Unavailable
	pidFile string
	// stale: a code change replaced it; it stops once childless.
	stale   bool
	closing bool
}

func newPreloadRunner(local *localRunner, s *Supervisor) *preloadRunner {
	return &preloadRunner{local: local, s: s, live: map[*warmParent]bool{}}
}

// Start forks spec's site from the warm parent of its environment,
// booting that parent first when none runs. What cannot be forked starts
// the plain way (a *plainProc saying why); errors are those of the fork or
// of the plain start.
func (r *preloadRunner) Start(ctx context.Context, spec ProcessSpec) (Proc, error) {
	if spec.Single || !isRunserver(spec.Argv, strconv.Itoa(spec.Port)) {
		return r.plain(ctx, spec, fmt.Sprintf("its command is not Django's runserver ([sites.%s] command in siteplex.toml)", spec.Site.Slug))
	}
	var gone error
	for range 2 {
		wp, err := r.parent(ctx, spec)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		failed := wp.err
		r.mu.Unlock()
		if failed != nil {
			return r.plain(ctx, spec, failed.Reason)
		}
		p, err := r.fork(wp, spec)
		var un *preload.Unavailable
		switch {
		case err == nil:
			return p, nil
		case errors.As(err, &un):
			r.unusable(wp, un)
			return r.plain(ctx, spec, un.Reason)
		case errors.Is(err, preload.ErrParentGone):
			r.forget(wp)
			gone = err
		default:
			return nil, err
		}
	}
	reason := fmt.Sprintf("the warm parent ended while forking twice in a row: %v", gone)
	r.mu.Lock()
	r.transient = reason
	r.mu.Unlock()
	return r.plain(ctx, spec, reason)
}

// plain starts spec through the local runner; reason says why it was not
// forked.
func (r *preloadRunner) plain(ctx context.Context, spec ProcessSpec, reason string) (Proc, error) {
	p, err := r.local.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &plainProc{Proc: p, reason: reason}, nil
}

// parent returns the current parent spec's site fits once it is booted
// (or failed to), booting one when none fits. ctx bounds only the wait.
func (r *preloadRunner) parent(ctx context.Context, spec ProcessSpec) (*warmParent, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	var wp *warmParent
	for _, c := range r.current {
		if c.err == nil && c.p != nil && c.p.Err() != nil {
			continue // it ended; its watcher drops it
		}
		if c.fits(spec) {
			wp = c
			break
		}
	}
	boot := wp == nil
	if boot {
		wp = newWarmParent(spec)
		r.current = append(r.current, wp)
	}
	r.mu.Unlock()
	if boot {
		r.boot(wp, spec)
	}
	select {
	case <-wp.ready:
		return wp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// boot starts wp's parent with spec's interpreter, folder and environment
// (its own SITEPLEX_PROC token) and waits until it is ready, at most the
// boot timeout. Its output goes to the PreloadLog log.
func (r *preloadRunner) boot(wp *warmParent, spec ProcessSpec) {
	defer close(wp.ready)
	if envValue(spec.Env, "SITEPLEX_OVERLAY") != "per-site" {
		// Without the overlay the children need to know what the
		// settings' SITE_ID follows: ask while the parent boots.
		go r.siteVariable()
	}
	python := spec.Argv[0]
	token := newToken()
	env := make([]string, 0, len(spec.Env)+1)
	for _, kv := range spec.Env {
		if !strings.HasPrefix(kv, procTokenEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, procTokenEnv+"="+token)
	out := &lineWriter{hub: r.s.logs, slug: PreloadLog}
	errw := &lineWriter{hub: r.s.logs, slug: PreloadLog, stderr: true}
	r.s.logs.system(PreloadLog, "booting a warm parent: %s %s (environment of site %s)", python, runserverArgs[0], spec.Site.Slug)
	ctx, cancel := context.WithTimeout(r.s.ctx, r.s.cfg.BootTimeout)
	p, err := preload.StartParent(ctx, preload.ParentSpec{Python: python, Dir: spec.Dir, Env: env, Stdout: out, Stderr: errw})
	cancel()
	if err != nil {
		out.Flush()
		errw.Flush()
		un := &preload.Unavailable{Reason: err.Error(), Err: err}
		errors.As(err, &un)
		r.s.logs.system(PreloadLog, "cannot preload: %s; sites start the plain way until the next code change", un.Reason)
		r.mu.Lock()
		wp.err = un
		r.mu.Unlock()
		if r.s.ctx.Err() == nil {
			r.s.backgroundError(fmt.Errorf("cannot preload: %s; sites start the plain way (docs/preload.md)", un.Reason))
		}
		return
	}
	pidFile := ""
	if r.s.stateDir != "" {
		pidFile, err = writePidFile(r.s.stateDir, pidRecord{
			PID: p.PID(), PGID: p.PID(), Token: token, Slug: PreloadLog,
			Argv: []string{python, "-", "siteplex-preload"}, Started: time.Now(),
		})
		if err != nil {
			r.s.backgroundError(err)
		}
	}
	if wd := r.local.watchdog(); wd != nil {
		wd.add(p.PID())
	}
	info := p.Info()
	how := "each child becomes its site through the overlay"
	sv := siteVariable{}
	if !info.Overlay {
		sv = r.siteVariable()
	}
	switch {
	case info.Overlay:
	case !sv.known:
		how = "each child sets SITE_ID from its SITE_ID variable"
	case sv.name == "":
		how = "SITE_ID follows no variable: each child keeps the settings' SITE_ID"
	default:
		how = "each child sets SITE_ID from its " + sv.name + " variable, as the settings read it"
	}
	r.s.logs.system(PreloadLog, "warm parent ready: pid %d, Python %s, Django %s, settings %s, booted in %s; %s",
		p.PID(), info.Python, info.Django, info.Settings, info.Boot.Round(time.Millisecond), how)
	r.mu.Lock()
	wp.p, wp.pidFile = p, pidFile
	r.live[wp] = true
	closed := r.closed
	if closed {
		wp.closing = true
	}
	r.watches.Add(1)
	r.mu.Unlock()
	go r.watch(wp, out, errw)
	if closed {
		go p.Close()
	}
	r.closeIfStale(wp)
}

// watch waits for wp's parent to end, then cleans up after it: its log
// lines, watchdog entry and pid file. An end nobody asked for is reported;
// the next start boots a new parent.
func (r *preloadRunner) watch(wp *warmParent, out, errw *lineWriter) {
	defer r.watches.Done()
	<-wp.p.Done()
	out.Flush()
	errw.Flush()
	if wd := r.local.watchdog(); wd != nil {
		wd.remove(wp.p.PID())
	}
	if wp.pidFile != "" {
		_ = os.Remove(wp.pidFile)
	}
	r.mu.Lock()
	delete(r.live, wp)
	if wp.err == nil {
		r.dropLocked(wp) // a failed one stays, until the next code change
	}
	asked := wp.closing || r.closed
	r.mu.Unlock()
	if asked {
		r.s.logs.system(PreloadLog, "warm parent %d stopped", wp.p.PID())
		return
	}
	r.s.logs.system(PreloadLog, "%v: its sites' processes end with it; the next start boots a new one", wp.p.Err())
	r.s.backgroundError(fmt.Errorf("preload: %w; the next start boots a new one", wp.p.Err()))
}

// fork forks spec's site from wp: the site's whole environment, port and
// output writers. The child's SITE_ID comes from the overlay when it is
// loaded, else from the variable the project's SITE_ID follows, as a
// plain process would read it.
func (r *preloadRunner) fork(wp *warmParent, spec ProcessSpec) (Proc, error) {
	cs := preload.ChildSpec{Port: spec.Port, Env: spec.Env, Stdout: spec.Stdout, Stderr: spec.Stderr}
	envVar := "SITEPLEX_SITE_ID"
	if !wp.p.Info().Overlay {
		envVar = "SITE_ID"
		if sv := r.siteVariable(); sv.known {
			envVar = sv.name
		}
	}
	if envVar != "" {
		cs.SiteID, _ = strconv.ParseInt(envValue(spec.Env, envVar), 10, 64)
	}
	ctx, cancel := context.WithTimeout(r.s.ctx, r.s.cfg.BootTimeout)
	defer cancel()
	c, err := wp.p.Fork(ctx, cs)
	if err != nil {
		return nil, err
	}
	wd := r.local.watchdog()
	if wd != nil {
		wd.add(c.PID())
	}
	r.mu.Lock()
	r.transient = ""
	r.mu.Unlock()
	go r.childEnded(wp, c, wd)
	return &forkedProc{Child: c, parent: wp.p.PID()}, nil
}

// childEnded unregisters a child from the watchdog once it ended, and
// stops its parent when a code change replaced it and this was its last
// child.
func (r *preloadRunner) childEnded(wp *warmParent, c *preload.Child, wd *watchdog) {
	<-c.Done()
	if wd != nil {
		wd.remove(c.PID())
	}
	r.closeIfStale(wp)
}

// unusable records that wp can no longer fork safely: it stops once its
// children ended, and sites start the plain way until the next code
// change.
func (r *preloadRunner) unusable(wp *warmParent, un *preload.Unavailable) {
	r.mu.Lock()
	first := wp.err == nil
	wp.err = un
	wp.stale = true // stop it once childless; the key stays, failed
	r.mu.Unlock()
	if first {
		r.s.logs.system(PreloadLog, "cannot fork from warm parent %d: %s; sites start the plain way until the next code change", wp.p.PID(), un.Reason)
		r.s.backgroundError(fmt.Errorf("cannot preload: %s; sites start the plain way (docs/preload.md)", un.Reason))
	}
	r.closeIfStale(wp)
}

// forget drops wp after its parent ended, so the next start boots anew.
func (r *preloadRunner) forget(wp *warmParent) {
	r.mu.Lock()
	r.dropLocked(wp)
	r.mu.Unlock()
}

// dropLocked takes wp out of the current parents.
func (r *preloadRunner) dropLocked(wp *warmParent) {
	r.current = slices.DeleteFunc(r.current, func(c *warmParent) bool { return c == wp })
}

// closeIfStale stops wp's parent when it is stale and has no child left.
func (r *preloadRunner) closeIfStale(wp *warmParent) {
	r.mu.Lock()
	stop := wp.stale && !wp.closing && wp.p != nil && len(wp.p.Children()) == 0
	if stop {
		wp.closing = true
	}
	r.mu.Unlock()
	if stop {
		go wp.p.Close()
	}
}

// codeChanged runs when the project's code changed, before the
// supervisor restarts the running processes: the current parents become
// stale (each stops once its last child ended), failures are forgotten,
// and the next start boots a new parent with the new code.
func (r *preloadRunner) codeChanged() {
	r.mu.Lock()
	old := r.current
	r.current = nil
	for _, wp := range old {
		wp.stale = true
	}
	r.transient = ""
	r.siteVar = nil
	r.mu.Unlock()
	for _, wp := range old {
		r.closeIfStale(wp)
	}
}

// status is the runner's part of PreloadStatus.
func (r *preloadRunner) status() *PreloadStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &PreloadStatus{On: true}
	for _, wp := range r.current {
		if wp.p != nil && wp.err == nil && wp.p.Err() == nil && st.ParentPID == 0 {
			st.ParentPID = wp.p.PID()
		}
		if wp.err != nil && st.Reason == "" {
			st.Reason = wp.err.Reason
		}
	}
	if st.Reason == "" {
		st.Reason = r.transient
	}
	return st
}

// Close stops every parent (each first stops its children: SIGTERM to
// their groups, SIGKILL after DefaultGrace) and the local runner's
// watchdog. Supervisor.Close calls it once every site process ended.
func (r *preloadRunner) Close() error {
	r.mu.Lock()
	r.closed = true
	var stop []*warmParent
	for wp := range r.live {
		if !wp.closing {
			wp.closing = true
			stop = append(stop, wp)
		}
	}
	r.current = nil
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, wp := range stop {
		wg.Go(func() { _ = wp.p.Close() })
	}
	wg.Wait()
	r.watches.Wait()
	return r.local.Close()
}

// siteVariable asks the project's Django (cached in .siteplex/django.json)
// which variable its SITE_ID follows, once per code version; concurrent
// callers wait for the one answer.
func (r *preloadRunner) siteVariable() siteVariable {
	r.mu.Lock()
	cell := r.siteVar
	if cell == nil {
		cell = &siteVarCell{}
		r.siteVar = cell
	}
	r.mu.Unlock()
	cell.once.Do(func() {
		p := r.s.cfg.Project
		if p == nil || p.Env == nil || p.Config == nil || !p.IsDjango {
			return
		}
		ctx, cancel := context.WithTimeout(r.s.ctx, django.DefaultTimeout+5*time.Second)
		defer cancel()
		if info, err := p.Django(ctx); err == nil && info != nil {
			cell.v.known = true
			if info.SiteID.Kind == django.KindEnv {
				cell.v.name = info.SiteID.EnvVar
			}
		}
	})
	return cell.v
}

// newWarmParent is a parent to boot for spec's site.
func newWarmParent(spec ProcessSpec) *warmParent {
	env := make(map[string]string, len(spec.Env))
	for _, kv := range spec.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return &warmParent{python: spec.Argv[0], dir: spec.Dir, env: env, ids: siteIDs(spec.Site.ID, env), ready: make(chan struct{})}
}

// siteIDs are the values that name a site in its environment: its id and
// the overlay's SITEPLEX_SITE_ID.
func siteIDs(id int64, env map[string]string) []string {
	ids := []string{strconv.FormatInt(id, 10)}
	if v := env["SITEPLEX_SITE_ID"]; v != "" {
		ids = append(ids, v)
	}
	return ids
}

// fits reports whether spec's site can fork from wp: the same interpreter,
// folder and variables, each with the same value unless it is a per-site
// variable (perSiteEnv, a name ending in SITE_ID) or holds each site's own
// id in both (the variable the project's SITE_ID follows, whatever its
// name).
func (wp *warmParent) fits(spec ProcessSpec) bool {
	if spec.Argv[0] != wp.python || spec.Dir != wp.dir {
		return false
	}
	env := make(map[string]string, len(spec.Env))
	for _, kv := range spec.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if len(env) != len(wp.env) {
		return false
	}
	ids := siteIDs(spec.Site.ID, env)
	for k, v := range env {
		pv, ok := wp.env[k]
		switch {
		case !ok:
			return false
		case v == pv, perSiteEnv[k], strings.HasSuffix(k, "SITE_ID"):
		case slices.Contains(ids, v) && slices.Contains(wp.ids, pv):
		default:
			return false
		}
	}
	return true
}

// envValue is the value of key in env (KEY=VALUE, the last one wins).
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// preloadNoter is implemented by the processes the preload runner starts:
// whether it was forked, and a line for the site's log.
type preloadNoter interface {
	preloadNote() (preloaded bool, note string)
}

// forkedProc is a site process forked from a warm parent.
type forkedProc struct {
	*preload.Child
	parent int
}

func (p *forkedProc) preloadNote() (bool, string) {
	return true, fmt.Sprintf("forked from the warm parent (pid %d)", p.parent)
}

// plainProc is a site process started the plain way although preload is
// on.
type plainProc struct {
	Proc
	reason string
}

// plainNotePrefix starts a plainProc's note; the rest is its reason.
const plainNotePrefix = "started the plain way: "

func (p *plainProc) preloadNote() (bool, string) {
	return false, plainNotePrefix + p.reason
}
