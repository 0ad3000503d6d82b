package tui

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
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
	https    []string // the engine's HTTPS addresses (none: HTTPS off)
	mode     devproxy.Mode
	hosts    map[int64]HostsState
	want     colWant
	// preload is the engine's preload status (nil: not asked for).
	preload *devproxy.PreloadStatus

	started    bool  // Engine.Start succeeded
	proxyErr   error // why the proxy is not running
	loadErr    error // why the sites could not be loaded
	hostsErr   error
	events     <-chan devproxy.Event
	unsub      func()
	dirty      bool // a request was seen since the last Status
	ticks      int
	reloadWait bool // a reload retry is scheduled
	triedLoad  bool // the UI asked the engine to load the sites itself

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
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste &&
			(m.kmode == modeNormal || m.kmode == modeConfirm) {
			// Keys typed faster than the terminal is read arrive as one
			// message: handle them one by one.
			var cmds []tea.Cmd
			for _, r := range msg.Runes {
				cmds = append(cmds, m.handleKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}))
				m.updateKeys()
			}
			return tea.Sequence(cmds...)
		}
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
			if len(m.sites) == 0 && !m.reloadWait && !m.triedLoad {
				// The engine loads the sites once it listens: load them
				// now, so the table works while the proxy does not.
				m.reloadWait, m.triedLoad = true, true
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
	m.refilter(true)
	var cmds []tea.Cmd
	cmds = append(cmds, m.cmdHostsStatus(), m.selectionChanged())
	if len(m.sites) == 0 && !m.reloadWait && m.started && !m.triedLoad {
		// Nothing loaded: find out why, and retry until it works (a
		// project with no sites at all is asked once).
		m.reloadWait, m.triedLoad = true, true
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
		m.addrs, m.https = st.Listen, st.HTTPS
	}
	m.preload = st.Preload
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
			// In single mode the one process's lines carry SingleSlug and
			// are every site's output.
			if m.logSlug != "" && (ev.Log.Site == m.logSlug ||
				m.mode == devproxy.Single && ev.Log.Site == devproxy.SingleSlug) {
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
		// Commands may still read the old list: change a copy.
		m.sites = append([]sites.Site(nil), m.sites...)
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
