package tui

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

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
		if n := m.running(); n > 0 && m.opt.Attached == "" {
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
		// esc undoes the nearest thing: a log search, the pane focus, the
		// site filter.
		switch {
		case m.search != "" && (m.focus() == focusLogs || !m.paneFocus && m.filter == ""):
			m.search, m.searchHit = "", -1
		case m.paneFocus:
			m.paneFocus = false
		case m.filter != "":
			m.filter = ""
			m.refilter(true)
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
	switch m.tab {
	case tabRequests:
		// Newest at the bottom: paneOff counts back from the end.
		m.paneOff = min(max(0, m.paneOff-d), max(0, m.siteRequests()-1))
		return
	case tabInfo:
		m.paneOff = min(max(0, m.paneOff+d), 20)
		return
	case tabLogs:
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

// siteRequests counts the selected site's requests in memory.
func (m *Model) siteRequests() int {
	s := m.selected()
	if s == nil {
		return 0
	}
	n := 0
	for i := range m.reqs {
		if m.reqs[i].Site == s.Slug {
			n++
		}
	}
	return n
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
		m.refilter(true)
		return m.selectionChanged()
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
	m.refilter(false) // typing selects the best match
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
// loopback without any hosts entry); https when the engine serves HTTPS
// and the CA may sign the name.
func (m *Model) siteURL(s *sites.Site) string {
	if len(m.addrs) == 0 || !m.started || m.proxyErr != nil {
		return ""
	}
	host := s.LocalDomain
	if m.hosts[s.ID] == HostsAll || host == "" {
		host = sites.StripPort(s.Domain)
	}
	return devproxy.SiteURL(host, m.addrs, m.https, m.opt.HTTPSPermits)
}

// ---- Selection ----

func (m *Model) selected() *sites.Site {
	if m.cursor < 0 || m.cursor >= len(m.rows) {
		return nil
	}
	return &m.sites[m.rows[m.cursor]]
}

// refilter recomputes the rows for the filter. With keep, the selected
// site stays selected when it is still shown; else the first row is.
func (m *Model) refilter(keep bool) {
	m.rows = filterRows(m.hay, m.sites, m.filter, m.rows)
	m.cursor = 0
	if keep && m.selSlug != "" {
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

// running counts the processes that run or start (in single mode every
// site shows the one shared process: it counts once).
func (m *Model) running() int {
	n := 0
	pids := map[int]bool{}
	for _, st := range m.status {
		switch st.State {
		case devproxy.Running, devproxy.Starting:
			if st.PID > 0 {
				if pids[st.PID] {
					continue
				}
				pids[st.PID] = true
			}
			n++
		case devproxy.Stopped, devproxy.Crashed, devproxy.Backoff:
		}
	}
	return n
}
