package tui

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

// Sizes of what the model keeps in memory.
const (
	maxLogLines  = 2000 // of the selected site (the engine keeps the rest)
	maxRequests  = 1000 // of all sites, like the engine
	eventBatch   = 512  // events coalesced into one message at most
	statusExpiry = 5 * time.Second
)

// focus is where the movement keys go: the site table or a pane tab.
type focus int

const (
	focusTable focus = iota
	focusLogs
	focusRequests
	focusInfo
)

// tab is the pane's tab.
type tab int

const (
	tabLogs tab = iota
	tabRequests
	tabInfo
)

func (t tab) String() string {
	switch t {
	case tabLogs:
		return "Logs"
	case tabRequests:
		return "Requests"
	case tabInfo:
		return "Info"
	}
	return "?"
}

// Messages. Every tea.Cmd of the UI returns one of these.
type (
	// subscribedMsg carries the engine's event stream.
	subscribedMsg struct {
		ch    <-chan devproxy.Event
		unsub func()
	}
	// eventsMsg is a batch of engine events; closed means the stream ended.
	eventsMsg struct {
		events []devproxy.Event
		closed bool
	}
	// startedMsg: Engine.Start returned.
	startedMsg struct{ err error }
	// retryStartMsg: time to call Engine.Start again.
	retryStartMsg struct{}
	// snapshotMsg: the engine's sites, status and addresses.
	snapshotMsg struct {
		sites  []sites.Site
		status devproxy.Status
		addrs  []string
	}
	// statusMsg: a fresh Engine.Status.
	statusMsg struct{ status devproxy.Status }
	// reloadedMsg: Engine.Reload returned; auto is true for the retries
	// the UI makes on its own while there are no sites.
	reloadedMsg struct {
		err  error
		auto bool
	}
	// retryReloadMsg: time to call Engine.Reload again.
	retryReloadMsg struct{}
	// hostsMsg: the hosts file's state per site id.
	hostsMsg struct {
		states map[int64]HostsState
		err    error
	}
	// logsMsg: the last lines of a site's output.
	logsMsg struct {
		slug  string
		lines []devproxy.LogLine
	}
	// requestsMsg: the last requests of every site.
	requestsMsg struct{ reqs []devproxy.RequestRecord }
	// actionMsg: a user action (start, stop, use, hosts…) finished.
	actionMsg struct {
		kind   actionKind
		slug   string
		siteID int64
		err    error
	}
	// sudoDoneMsg: the suspended `sudo siteplex hosts …` command ended.
	sudoDoneMsg struct {
		command string
		err     error
	}
	// tickMsg: the once-a-second clock.
	tickMsg time.Time
	// clearStatusMsg expires the status line message with the same id.
	clearStatusMsg struct{ id int }
)

// actionKind names a user action, for its result message.
type actionKind int

const (
	actStart actionKind = iota
	actStop
	actRestart
	actUse
	actReload
	actHostsApply
	actHostsRemove
	actOpen
)

func (k actionKind) String() string {
	switch k {
	case actStart:
		return "start"
	case actStop:
		return "stop"
	case actRestart:
		return "restart"
	case actUse:
		return "use"
	case actReload:
		return "reload"
	case actHostsApply:
		return "hosts apply"
	case actHostsRemove:
		return "hosts remove"
	case actOpen:
		return "open"
	}
	return "action"
}

// Model is the UI's state. Build it with New; it is used by pointer.
type Model struct {
	opt  Options
	ctx  context.Context
	keys KeyMap
	st   Styles
	help help.Model
	now  time.Time

	width, height int

	// What the engine knows.
	sites    []sites.Site
	hay      []string
	bySlug   map[string]int
	status   map[string]devproxy.SiteStatus
	forcedID int64
	addrs    []string
	mode     devproxy.Mode
	hosts    map[int64]HostsState
	want     colWant

	started    bool  // Engine.Start succeeded
	proxyErr   error // why the proxy is not running
	loadErr    error // why the sites could not be loaded
	hostsErr   error
	events     <-chan devproxy.Event
	unsub      func()
	dirty      bool // a request was seen since the last Status
	ticks      int
	reloadWait bool // a reload retry is scheduled

	// The table.
	rows    []int // indexes into sites, filtered and ordered
	cursor  int   // index into rows
	offset  int   // first visible row
	selSlug string

	// Keyboard state.
	kmode     mode
	paneFocus bool
	tab       tab
	filter    string
	showHelp  bool

	// The pane.
	logSlug   string
	logs      []devproxy.LogLine
	logOff    int // first shown line when not following
	follow    bool
	search    string
	searchHit int // index into logs of the current match, -1 none
	reqs      []devproxy.RequestRecord
	reqSeen   map[devproxy.RequestRecord]bool // in the last snapshot, maybe still queued as events
	paneOff   int                             // scroll of Requests and Info

	statusText string
	statusErr  bool
	statusID   int
}

// New returns the UI's model. It does no I/O.
func New(opt Options) *Model {
	if opt.Context == nil {
		opt.Context = context.Background()
	}
	if opt.RetryEvery <= 0 {
		opt.RetryEvery = 3 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Mode == "" {
		opt.Mode = devproxy.PerSite
	}
	m := &Model{
		opt:       opt,
		ctx:       opt.Context,
		keys:      DefaultKeyMap(),
		st:        DefaultStyles(opt.Renderer),
		help:      help.New(),
		now:       opt.Now(),
		width:     80,
		height:    24,
		bySlug:    map[string]int{},
		status:    map[string]devproxy.SiteStatus{},
		hosts:     map[int64]HostsState{},
		mode:      opt.Mode,
		follow:    true,
		searchHit: -1,
	}
	m.statusText = opt.Notice
	m.help.Styles = m.st.Help
	m.help.FullSeparator = "  "
	m.help.ShortSeparator = " · "
	m.updateKeys()
	return m
}

// Init subscribes to the engine, starts it and loads what it knows.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.cmdSubscribe(), m.cmdSnapshot(), m.cmdRequests()}
	if m.opt.NoStart {
		m.started = true
	} else {
		cmds = append(cmds, m.cmdStart())
	}
	if !m.opt.NoTick {
		cmds = append(cmds, tick())
	}
	return tea.Batch(cmds...)
}

// Unsubscribe ends the event stream; call it after the program ended.
func (m *Model) Unsubscribe() {
	if m.unsub != nil {
		m.unsub()
		m.unsub = nil
	}
}

// ---- Commands (all I/O happens here, never in Update or View) ----

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (m *Model) cmdSubscribe() tea.Cmd {
	e := m.opt.Engine
	return func() tea.Msg {
		ch, unsub := e.Subscribe()
		return subscribedMsg{ch: ch, unsub: unsub}
	}
}

// waitEvents waits for the next event and takes every event already
// queued with it (up to eventBatch), so a chatty process costs one
// message per batch, not one per line.
func waitEvents(ch <-chan devproxy.Event) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsMsg{closed: true}
		}
		evs := []devproxy.Event{ev}
		for len(evs) < eventBatch {
			select {
			case ev, ok := <-ch:
				if !ok {
					return eventsMsg{events: evs, closed: true}
				}
				evs = append(evs, ev)
			default:
				return eventsMsg{events: evs}
			}
		}
		return eventsMsg{events: evs}
	}
}

func (m *Model) cmdStart() tea.Cmd {
	e, ctx := m.opt.Engine, m.ctx
	return func() tea.Msg { return startedMsg{err: e.Start(ctx)} }
}

func (m *Model) cmdSnapshot() tea.Cmd {
	e := m.opt.Engine
	return func() tea.Msg {
		return snapshotMsg{sites: e.Sites(), status: e.Status(), addrs: e.Addrs()}
	}
}

func (m *Model) cmdStatus() tea.Cmd {
	e := m.opt.Engine
	return func() tea.Msg { return statusMsg{status: e.Status()} }
}

func (m *Model) cmdReload(auto bool) tea.Cmd {
	e, ctx := m.opt.Engine, m.ctx
	return func() tea.Msg { return reloadedMsg{err: e.Reload(ctx), auto: auto} }
}

func (m *Model) cmdHostsStatus() tea.Cmd {
	h, ctx, list := m.opt.Hosts, m.ctx, m.sites
	if h == nil || len(list) == 0 {
		return nil
	}
	return func() tea.Msg {
		st, err := h.Status(ctx, list)
		return hostsMsg{states: st, err: err}
	}
}

func (m *Model) cmdLogs(slug string) tea.Cmd {
	e := m.opt.Engine
	return func() tea.Msg { return logsMsg{slug: slug, lines: e.Logs(slug, maxLogLines)} }
}

func (m *Model) cmdRequests() tea.Cmd {
	e := m.opt.Engine
	return func() tea.Msg { return requestsMsg{reqs: e.Requests(maxRequests)} }
}

func (m *Model) cmdAction(kind actionKind, s *sites.Site, fn func(ctx context.Context) error) tea.Cmd {
	ctx := m.ctx
	am := actionMsg{kind: kind}
	if s != nil {
		am.slug, am.siteID = s.Slug, s.ID
	}
	return func() tea.Msg {
		am.err = fn(ctx)
		return am
	}
}

func (m *Model) setStatus(text string, isErr bool) tea.Cmd {
	m.statusID++
	m.statusText, m.statusErr = text, isErr
	if isErr {
		return nil // errors stay until something replaces them
	}
	id := m.statusID
	return tea.Tick(statusExpiry, func(time.Time) tea.Msg { return clearStatusMsg{id: id} })
}

// ---- Update ----

// Update handles one message. It never does I/O itself.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.updateKeys()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.ensureVisible()
		return nil
	case tea.KeyMsg:
		return m.handleKey(msg)
	case subscribedMsg:
		m.events, m.unsub = msg.ch, msg.unsub
		if m.events == nil {
			return nil
		}
		return waitEvents(m.events)
	case eventsMsg:
		cmd := m.applyEvents(msg.events)
		if msg.closed || m.events == nil {
			return cmd
		}
		return tea.Batch(cmd, waitEvents(m.events))
	case startedMsg:
		if msg.err != nil {
			m.proxyErr = msg.err
			retry := tea.Tick(m.opt.RetryEvery, func(time.Time) tea.Msg { return retryStartMsg{} })
			if len(m.sites) == 0 && !m.reloadWait {
				// The engine loads the sites once it listens: load them
				// now, so the table works while the proxy does not.
				m.reloadWait = true
				return tea.Batch(retry, m.cmdReload(true))
			}
			return retry
		}
		m.started, m.proxyErr = true, nil
		return m.cmdSnapshot()
	case retryStartMsg:
		return m.cmdStart()
	case snapshotMsg:
		return m.applySnapshot(msg)
	case statusMsg:
		m.applyStatus(msg.status)
		return nil
	case reloadedMsg:
		if msg.err != nil {
			m.loadErr = msg.err
			if msg.auto || len(m.sites) == 0 {
				m.reloadWait = true
				return tea.Tick(m.opt.RetryEvery, func(time.Time) tea.Msg { return retryReloadMsg{} })
			}
			return m.setStatus("reload: "+oneLine(msg.err), true)
		}
		m.loadErr, m.reloadWait = nil, false
		if m.statusErr && strings.HasPrefix(m.statusText, "loading sites") {
			m.statusText, m.statusErr = "", false // the engine's error is over
		}
		var c tea.Cmd
		if !msg.auto {
			c = m.setStatus("sites reloaded", false)
		}
		return tea.Batch(c, m.cmdSnapshot())
	case retryReloadMsg:
		m.reloadWait = false
		return m.cmdReload(true)
	case hostsMsg:
		if msg.err != nil {
			m.hostsErr = msg.err
			return nil
		}
		m.hostsErr = nil
		if msg.states != nil {
			m.hosts = msg.states
		}
		return nil
	case logsMsg:
		m.applyLogs(msg)
		return nil
	case requestsMsg:
		// Events that came before the snapshot are in it; those still
		// queued are skipped when they arrive.
		m.reqSeen = make(map[devproxy.RequestRecord]bool, len(msg.reqs))
		for _, r := range msg.reqs {
			m.reqSeen[r] = true
		}
		m.reqs = append([]devproxy.RequestRecord(nil), msg.reqs...)
		return nil
	case actionMsg:
		return m.actionDone(msg)
	case sudoDoneMsg:
		var c tea.Cmd
		if msg.err != nil {
			c = m.setStatus("the hosts file needs root and this failed ("+oneLine(msg.err)+"); as root, run: "+msg.command, true)
		} else {
			c = m.setStatus("done: "+msg.command, false)
		}
		return tea.Batch(c, m.cmdHostsStatus())
	case tickMsg:
		m.now = time.Time(msg)
		m.ticks++
		var c tea.Cmd
		// Request counts change with every request: refresh them when some
		// came, and everything now and then in case an event was dropped.
		if m.dirty || m.ticks%5 == 0 {
			m.dirty = false
			c = m.cmdStatus()
		}
		return tea.Batch(c, tick())
	case clearStatusMsg:
		if msg.id == m.statusID {
			m.statusText, m.statusErr = "", false
		}
		return nil
	}
	return nil
}

func (m *Model) applySnapshot(msg snapshotMsg) tea.Cmd {
	m.sites = msg.sites
	m.hay = make([]string, len(m.sites))
	m.bySlug = make(map[string]int, len(m.sites))
	m.forcedID = 0
	for i := range m.sites {
		s := &m.sites[i]
		m.hay[i] = haystack(s)
		m.bySlug[s.Slug] = i
		if s.Forced {
			m.forcedID = s.ID
		}
	}
	m.want = measure(m.sites)
	m.addrs = msg.addrs
	m.applyStatus(msg.status)
	m.refilter()
	var cmds []tea.Cmd
	cmds = append(cmds, m.cmdHostsStatus(), m.selectionChanged())
	if len(m.sites) == 0 && !m.reloadWait && m.started {
		// Nothing loaded: find out why, and retry until it works.
		m.reloadWait = true
		cmds = append(cmds, m.cmdReload(true))
	}
	return tea.Batch(cmds...)
}

func (m *Model) applyStatus(st devproxy.Status) {
	if st.Mode != "" {
		m.mode = st.Mode
	}
	if st.ForcedSiteID != 0 {
		m.forcedID = st.ForcedSiteID
	}
	if len(st.Listen) > 0 {
		m.addrs = st.Listen
	}
	if len(st.Sites) > 0 {
		m.status = make(map[string]devproxy.SiteStatus, len(st.Sites))
		for _, s := range st.Sites {
			m.status[s.Slug] = s
		}
	}
}

// applyEvents folds a batch of engine events into the model.
func (m *Model) applyEvents(evs []devproxy.Event) tea.Cmd {
	var cmds []tea.Cmd
	logsChanged, snapshot := false, false
	for _, ev := range evs {
		switch ev.Kind {
		case devproxy.EventState:
			m.status[ev.Site.Slug] = ev.Site
		case devproxy.EventLog:
			if ev.Log.Site == m.logSlug && m.logSlug != "" {
				l := ev.Log
				if n := len(m.logs); n > 0 && !l.Time.After(m.logs[n-1].Time) {
					continue // already in the snapshot applyLogs took
				}
				l.Text = sanitize(l.Text)
				m.logs = append(m.logs, l)
				logsChanged = true
			}
		case devproxy.EventRequest:
			if m.reqSeen[ev.Request] {
				delete(m.reqSeen, ev.Request)
				continue
			}
			m.reqs = append(m.reqs, ev.Request)
			if st, ok := m.status[ev.Request.Site]; ok {
				st.Requests++
				m.status[ev.Request.Site] = st
			}
			m.dirty = true
		case devproxy.EventSites:
			snapshot = true
		case devproxy.EventError:
			if ev.Err != nil {
				cmds = append(cmds, m.setStatus(oneLine(ev.Err), true))
			}
		}
	}
	if logsChanged {
		m.trimLogs()
	}
	if len(m.reqs) > 2*maxRequests {
		m.reqs = append([]devproxy.RequestRecord(nil), m.reqs[len(m.reqs)-maxRequests:]...)
	}
	if snapshot {
		cmds = append(cmds, m.cmdSnapshot())
	}
	return tea.Batch(cmds...)
}

func (m *Model) trimLogs() {
	if len(m.logs) <= 2*maxLogLines {
		return
	}
	drop := len(m.logs) - maxLogLines
	m.logs = append([]devproxy.LogLine(nil), m.logs[drop:]...)
	m.logOff = max(0, m.logOff-drop)
	if m.searchHit >= 0 {
		m.searchHit -= drop
		if m.searchHit < 0 {
			m.searchHit = -1
		}
	}
}

// applyLogs replaces the selected site's lines with the engine's, keeping
// lines that arrived as events after the engine's last one.
func (m *Model) applyLogs(msg logsMsg) {
	if msg.slug != m.logSlug {
		return
	}
	lines := make([]devproxy.LogLine, 0, len(msg.lines)+len(m.logs))
	for _, l := range msg.lines {
		l.Text = sanitize(l.Text)
		lines = append(lines, l)
	}
	var last time.Time
	if len(lines) > 0 {
		last = lines[len(lines)-1].Time
	}
	for _, l := range m.logs {
		if l.Time.After(last) {
			lines = append(lines, l)
		}
	}
	m.logs = lines
	m.trimLogs()
}

func (m *Model) actionDone(msg actionMsg) tea.Cmd {
	if pe, ok := asPermission(msg.err); ok && len(pe.Command) > 0 {
		// The hosts file needs root: hand the terminal to sudo, then come back.
		c := exec.Command(pe.Command[0], pe.Command[1:]...)
		line := strings.Join(pe.Command, " ")
		m.setStatus("running: "+line, false)
		return tea.ExecProcess(c, func(err error) tea.Msg { return sudoDoneMsg{command: line, err: err} })
	}
	if msg.err != nil {
		what := msg.kind.String()
		if msg.slug != "" {
			what += " " + msg.slug
		}
		return m.setStatus(what+": "+oneLine(msg.err), true)
	}
	switch msg.kind {
	case actUse:
		m.forcedID = msg.siteID
		for i := range m.sites {
			m.sites[i].Forced = m.sites[i].ID == msg.siteID
		}
		return m.setStatus(fmt.Sprintf("using site %d %s", msg.siteID, msg.slug), false)
	case actHostsApply, actHostsRemove:
		what := "hosts entries added"
		if msg.kind == actHostsRemove {
			what = "hosts entries removed"
		}
		if msg.slug != "" {
			what += " for " + msg.slug
		}
		return tea.Batch(m.setStatus(what, false), m.cmdHostsStatus())
	case actReload:
		m.loadErr = nil
		return tea.Batch(m.setStatus("sites reloaded", false), m.cmdSnapshot())
	case actStart, actStop, actRestart, actOpen:
		return nil
	}
	return nil
}

// ---- Keys ----

// updateKeys enables the bindings that work now, so the help shows only
// those.
func (m *Model) updateKeys() {
	k := &m.keys
	normal := m.kmode == modeNormal
	f := m.focus()
	hasSite := m.selected() != nil
	for _, b := range []*key.Binding{&k.Top, &k.Bottom, &k.HalfDown, &k.HalfUp,
		&k.NextPane, &k.PrevPane, &k.Reload, &k.Help, &k.Quit} {
		b.SetEnabled(normal)
	}
	k.Follow.SetEnabled(normal && m.tab == tabLogs)
	k.Up.SetEnabled(normal || m.kmode == modeFilter)
	k.Down.SetEnabled(normal || m.kmode == modeFilter)
	k.Move.SetEnabled(normal || m.kmode == modeFilter)
	k.PageDown.SetEnabled(m.kmode != modeConfirm)
	k.PageUp.SetEnabled(m.kmode != modeConfirm)
	k.Filter.SetEnabled(normal && f == focusTable)
	k.Search.SetEnabled(normal && f == focusLogs)
	k.SearchNext.SetEnabled(normal && f == focusLogs && m.search != "")
	k.SearchPrev.SetEnabled(normal && f == focusLogs && m.search != "")
	k.Accept.SetEnabled(m.kmode == modeFilter || m.kmode == modeSearch)
	k.Clear.SetEnabled(m.kmode == modeFilter || m.kmode == modeSearch ||
		normal && (m.paneFocus || m.filter != "" || m.search != ""))
	for _, b := range []*key.Binding{&k.Use, &k.StartStop, &k.Restart, &k.Open} {
		b.SetEnabled(normal && hasSite)
	}
	k.Hosts.SetEnabled(normal && hasSite && m.opt.Hosts != nil)
	k.HostsAll.SetEnabled(normal && m.opt.Hosts != nil && len(m.sites) > 0)
	k.Yes.SetEnabled(m.kmode == modeConfirm)
	k.No.SetEnabled(m.kmode == modeConfirm)
	k.ForceQuit.SetEnabled(true)
}

func (m *Model) focus() focus {
	if !m.paneFocus {
		return focusTable
	}
	switch m.tab {
	case tabLogs:
		return focusLogs
	case tabRequests:
		return focusRequests
	case tabInfo:
		return focusInfo
	}
	return focusTable
}

func (m *Model) handleKey(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	if key.Matches(msg, k.ForceQuit) {
		return tea.Quit
	}
	switch m.kmode {
	case modeConfirm:
		switch {
		case key.Matches(msg, k.Yes):
			return tea.Quit
		case key.Matches(msg, k.No):
			m.kmode = modeNormal
			return nil
		}
		return nil
	case modeFilter:
		return m.filterKey(msg)
	case modeSearch:
		return m.searchKey(msg)
	case modeNormal:
	}

	switch {
	case key.Matches(msg, k.Quit):
		if n := m.running(); n > 0 {
			m.kmode = modeConfirm
			return nil
		}
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.showHelp = !m.showHelp
		m.help.ShowAll = m.showHelp
		m.ensureVisible()
	case key.Matches(msg, k.NextPane):
		m.cycleFocus(1)
	case key.Matches(msg, k.PrevPane):
		m.cycleFocus(-1)
	case key.Matches(msg, k.Clear):
		if m.paneFocus {
			m.paneFocus = false
		} else if m.filter != "" {
			m.filter = ""
			m.refilter()
			return m.selectionChanged()
		}
	case key.Matches(msg, k.Filter):
		m.kmode = modeFilter
	case key.Matches(msg, k.Search):
		m.kmode = modeSearch
		m.search = ""
		m.searchHit = -1
	case key.Matches(msg, k.SearchNext):
		m.findMatch(-1) // n: the next match upwards (older), like less's ?
	case key.Matches(msg, k.SearchPrev):
		m.findMatch(1)
	case key.Matches(msg, k.PageDown):
		m.scrollPane(m.paneHeight())
	case key.Matches(msg, k.PageUp):
		m.scrollPane(-m.paneHeight())
	case key.Matches(msg, k.Follow):
		m.follow = !m.follow
		if m.follow {
			m.searchHit = -1
			return m.setStatus("following logs", false)
		}
		m.logOff = m.logBottom()
		return m.setStatus("logs paused (f follows again)", false)
	case key.Matches(msg, k.Up, k.Down, k.Top, k.Bottom, k.HalfDown, k.HalfUp):
		return m.move(msg)
	case key.Matches(msg, k.Use):
		return m.use()
	case key.Matches(msg, k.Hosts):
		return m.toggleHosts()
	case key.Matches(msg, k.HostsAll):
		return m.toggleAllHosts()
	case key.Matches(msg, k.StartStop):
		return m.startStop()
	case key.Matches(msg, k.Restart):
		if s := m.selected(); s != nil {
			e, slug := m.opt.Engine, s.Slug
			return tea.Batch(m.setStatus("restarting "+slug, false),
				m.cmdAction(actRestart, s, func(ctx context.Context) error { return e.RestartSite(ctx, slug) }))
		}
	case key.Matches(msg, k.Reload):
		e := m.opt.Engine
		return tea.Batch(m.setStatus("reloading sites…", false),
			m.cmdAction(actReload, nil, func(ctx context.Context) error { return e.Reload(ctx) }))
	case key.Matches(msg, k.Open):
		return m.open()
	}
	return nil
}

func (m *Model) cycleFocus(d int) {
	// table → Logs → Requests → Info → table
	cur := int(m.focus())
	next := (cur + d + 4) % 4
	if next == int(focusTable) {
		m.paneFocus = false
		return
	}
	m.paneFocus = true
	m.tab = tab(next - 1)
	m.paneOff = 0
}

// move handles the movement keys for the focused part.
func (m *Model) move(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	if m.paneFocus {
		h := m.paneHeight()
		switch {
		case key.Matches(msg, k.Up):
			m.scrollPane(-1)
		case key.Matches(msg, k.Down):
			m.scrollPane(1)
		case key.Matches(msg, k.HalfUp):
			m.scrollPane(-max(1, h/2))
		case key.Matches(msg, k.HalfDown):
			m.scrollPane(max(1, h/2))
		case key.Matches(msg, k.Top):
			m.scrollPane(-1 << 30)
		case key.Matches(msg, k.Bottom):
			m.scrollPane(1 << 30)
		}
		return nil
	}
	h := m.tableHeight()
	switch {
	case key.Matches(msg, k.Up):
		m.cursor--
	case key.Matches(msg, k.Down):
		m.cursor++
	case key.Matches(msg, k.HalfUp):
		m.cursor -= max(1, h/2)
	case key.Matches(msg, k.HalfDown):
		m.cursor += max(1, h/2)
	case key.Matches(msg, k.Top):
		m.cursor = 0
	case key.Matches(msg, k.Bottom):
		m.cursor = len(m.rows) - 1
	}
	m.ensureVisible()
	return m.selectionChanged()
}

// scrollPane scrolls the shown tab by d lines; for logs, scrolling up
// pauses following and reaching the bottom resumes it.
func (m *Model) scrollPane(d int) {
	if m.tab != tabLogs {
		m.paneOff = max(0, m.paneOff+d)
		return
	}
	bottom := m.logBottom()
	off := m.logOff
	if m.follow {
		off = bottom
	}
	off = min(max(0, off+d), bottom)
	m.logOff = off
	m.follow = off >= bottom
}

// logBottom is the first line shown when following.
func (m *Model) logBottom() int {
	return max(0, len(m.logs)-m.paneHeight())
}

func (m *Model) filterKey(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Accept):
		m.kmode = modeNormal
		return nil
	case key.Matches(msg, k.Clear):
		m.kmode = modeNormal
		m.filter = ""
	case msg.Type == tea.KeyUp, msg.Type == tea.KeyDown:
		// Arrows move while typing; j and k are letters here.
		return m.move(msg)
	case key.Matches(msg, k.PageUp):
		m.scrollPane(-m.paneHeight())
		return nil
	case key.Matches(msg, k.PageDown):
		m.scrollPane(m.paneHeight())
		return nil
	default:
		s, ok := editLine(m.filter, msg)
		if !ok {
			return nil
		}
		m.filter = s
	}
	m.refilter()
	return m.selectionChanged()
}

func (m *Model) searchKey(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Accept):
		m.kmode = modeNormal
		if m.search != "" {
			m.searchHit = -1
			if !m.findMatch(-1) {
				return m.setStatus("no match for "+m.search, true)
			}
		}
		return nil
	case key.Matches(msg, k.Clear):
		m.kmode = modeNormal
		m.search = ""
		m.searchHit = -1
		return nil
	}
	if s, ok := editLine(m.search, msg); ok {
		m.search = s
	}
	return nil
}

// editLine applies a key to a one-line input: typing, backspace, ctrl+w,
// ctrl+u. ok is false for keys it does not handle.
func editLine(s string, msg tea.KeyMsg) (string, bool) {
	switch msg.Type {
	case tea.KeyRunes, tea.KeySpace:
		return s + string(msg.Runes), true
	case tea.KeyBackspace:
		if s == "" {
			return s, true
		}
		_, n := utf8.DecodeLastRuneInString(s)
		return s[:len(s)-n], true
	case tea.KeyCtrlW:
		t := strings.TrimRight(s, " ")
		if i := strings.LastIndexByte(t, ' '); i >= 0 {
			return t[:i+1], true
		}
		return "", true
	case tea.KeyCtrlU:
		return "", true
	}
	return s, false
}

// findMatch moves to the next log line containing the search, going
// towards older lines (dir -1) or newer (dir 1) from the current match or
// the bottom. It pauses following and reports whether it found one.
func (m *Model) findMatch(dir int) bool {
	if m.search == "" || len(m.logs) == 0 {
		return false
	}
	q := strings.ToLower(m.search)
	start := m.searchHit
	if start < 0 {
		start = len(m.logs)
		if dir > 0 {
			start = -1
		}
	}
	for i, n := start+dir, 0; n < len(m.logs); i, n = i+dir, n+1 {
		if i < 0 {
			i = len(m.logs) - 1
		} else if i >= len(m.logs) {
			i = 0
		}
		if strings.Contains(strings.ToLower(m.logs[i].Text), q) {
			m.searchHit = i
			m.follow = false
			h := m.paneHeight()
			m.logOff = min(max(0, i-h/2), m.logBottom())
			return true
		}
	}
	return false
}

// ---- Actions ----

func (m *Model) use() tea.Cmd {
	s := m.selected()
	if s == nil {
		return nil
	}
	if !s.Usable() {
		return m.setStatus(fmt.Sprintf("site %d cannot be used: %s", s.ID, strings.Join(s.Problems, "; ")), true)
	}
	e, write, id := m.opt.Engine, m.opt.WriteForced, s.ID
	return m.cmdAction(actUse, s, func(ctx context.Context) error {
		if write != nil {
			if err := write(ctx, id); err != nil {
				return err
			}
		}
		return e.Use(ctx, id)
	})
}

func (m *Model) toggleHosts() tea.Cmd {
	s := m.selected()
	if s == nil || m.opt.Hosts == nil {
		return nil
	}
	if !s.Usable() {
		return m.setStatus("site "+s.Slug+" is never written to the hosts file: "+strings.Join(s.Problems, "; "), true)
	}
	h, list, slug := m.opt.Hosts, m.sites, s.Slug
	if st := m.hosts[s.ID]; st == HostsAll || st == HostsSome {
		return m.cmdAction(actHostsRemove, s, func(ctx context.Context) error {
			return h.Remove(ctx, list, []string{slug})
		})
	}
	return m.cmdAction(actHostsApply, s, func(ctx context.Context) error {
		return h.Apply(ctx, list, []string{slug})
	})
}

// toggleAllHosts removes the block when every usable site is in it, else
// applies every site.
func (m *Model) toggleAllHosts() tea.Cmd {
	if m.opt.Hosts == nil || len(m.sites) == 0 {
		return nil
	}
	all := true
	for i := range m.sites {
		if m.sites[i].Usable() && m.hosts[m.sites[i].ID] != HostsAll {
			all = false
			break
		}
	}
	h, list := m.opt.Hosts, m.sites
	if all {
		return m.cmdAction(actHostsRemove, nil, func(ctx context.Context) error { return h.Remove(ctx, list, nil) })
	}
	return m.cmdAction(actHostsApply, nil, func(ctx context.Context) error { return h.Apply(ctx, list, nil) })
}

func (m *Model) startStop() tea.Cmd {
	s := m.selected()
	if s == nil {
		return nil
	}
	e, slug := m.opt.Engine, s.Slug
	switch m.status[slug].State {
	case devproxy.Running, devproxy.Starting:
		return tea.Batch(m.setStatus("stopping "+slug, false),
			m.cmdAction(actStop, s, func(ctx context.Context) error { return e.StopSite(ctx, slug) }))
	case devproxy.Stopped, devproxy.Crashed, devproxy.Backoff:
	}
	if !s.Usable() {
		return m.setStatus("site "+slug+" is not routed: "+strings.Join(s.Problems, "; "), true)
	}
	return tea.Batch(m.setStatus("starting "+slug, false),
		m.cmdAction(actStart, s, func(ctx context.Context) error { return e.StartSite(ctx, slug) }))
}

func (m *Model) open() tea.Cmd {
	s := m.selected()
	if s == nil {
		return nil
	}
	u := m.siteURL(s)
	if u == "" {
		return m.setStatus("the proxy is not running: nothing to open", true)
	}
	if m.opt.OpenURL == nil {
		return m.setStatus("open "+u+" in your browser", false)
	}
	open := m.opt.OpenURL
	return tea.Batch(m.setStatus("opening "+u, false),
		m.cmdAction(actOpen, s, func(ctx context.Context) error { return open(ctx, u) }))
}

// siteURL is the address of s through the proxy: its real domain when its
// hosts entries are in, else its local domain (*.localhost resolves to
// loopback without any hosts entry).
func (m *Model) siteURL(s *sites.Site) string {
	if len(m.addrs) == 0 || !m.started {
		return ""
	}
	host := s.LocalDomain
	if m.hosts[s.ID] == HostsAll || host == "" {
		host = sites.StripPort(s.Domain)
	}
	port := portOf(m.addrs[0])
	if port == "" || port == "80" {
		return "http://" + host + "/"
	}
	return "http://" + host + ":" + port + "/"
}

// ---- Selection ----

func (m *Model) selected() *sites.Site {
	if m.cursor < 0 || m.cursor >= len(m.rows) {
		return nil
	}
	return &m.sites[m.rows[m.cursor]]
}

// refilter recomputes the rows for the filter, keeping the selected site
// selected when it is still shown.
func (m *Model) refilter() {
	m.rows = filterRows(m.hay, m.sites, m.filter, m.rows)
	m.cursor = 0
	if m.filter == "" && m.selSlug != "" {
		if i, ok := m.bySlug[m.selSlug]; ok {
			for r, idx := range m.rows {
				if idx == i {
					m.cursor = r
					break
				}
			}
		}
	}
	m.ensureVisible()
}

// selectionChanged notes the selected site and loads its logs when it
// changed.
func (m *Model) selectionChanged() tea.Cmd {
	s := m.selected()
	slug := ""
	if s != nil {
		slug = s.Slug
		m.selSlug = slug
	}
	if slug == m.logSlug {
		return nil
	}
	m.logSlug = slug
	m.logs = nil
	m.logOff = 0
	m.follow = true
	m.searchHit = -1
	m.paneOff = 0
	if slug == "" {
		return nil
	}
	return m.cmdLogs(slug)
}

func (m *Model) ensureVisible() {
	if m.cursor >= len(m.rows) {
		m.cursor = len(m.rows) - 1
	}
	if m.cursor < 0 {
		m.cursor = 0
	}
	h := m.tableHeight()
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+h {
		m.offset = m.cursor - h + 1
	}
	if m.offset > len(m.rows)-h {
		m.offset = max(0, len(m.rows)-h)
	}
	if m.offset < 0 {
		m.offset = 0
	}
}

// running counts the processes that run or start.
func (m *Model) running() int {
	n := 0
	for _, st := range m.status {
		switch st.State {
		case devproxy.Running, devproxy.Starting:
			n++
		case devproxy.Stopped, devproxy.Crashed, devproxy.Backoff:
		}
	}
	return n
}

// ---- Helpers ----

// sanitize makes a line of process output safe to draw: escape sequences
// removed, tabs expanded, other control characters dropped.
func sanitize(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
		return s
	}
	s = ansi.Strip(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteString("    ")
		case r < 0x20 || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// oneLine is err's message without line breaks.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

func asPermission(err error) (*PermissionError, bool) {
	var pe *PermissionError
	ok := errors.As(err, &pe)
	return pe, ok
}

// portOf returns the port of host:port ("" when there is none).
func portOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 || strings.HasSuffix(addr, "]") {
		return ""
	}
	return addr[i+1:]
}
