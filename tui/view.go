package tui

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/dustin/go-humanize"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

// colWant is the width each flexible column would like, measured once
// per site list.
type colWant struct{ id, slug, name, domain, local int }

func measure(list []sites.Site) colWant {
	w := colWant{id: 2, slug: 4, name: 4, domain: 6, local: 5}
	for i := range list {
		s := &list[i]
		w.id = max(w.id, len(strconv.FormatInt(s.ID, 10)))
		w.slug = max(w.slug, ansi.StringWidth(s.Slug))
		w.name = max(w.name, ansi.StringWidth(s.Name))
		dw := ansi.StringWidth(s.Domain)
		if !s.Usable() {
			dw = 18 // "⚠ invalid domain …": no need to show it all
		}
		w.domain = max(w.domain, dw)
		w.local = max(w.local, ansi.StringWidth(s.LocalDomain))
	}
	w.slug = min(w.slug, 24)
	w.name = min(w.name, 24)
	w.domain = min(w.domain, 30)
	w.local = min(w.local, 32)
	return w
}

// columns is the table's layout for one width: 0 means hidden.
type columns struct {
	sep                            string
	id, slug, name, domain, local  int
	hosts, state, port, req        int
	showName, showLocal, showHosts bool
}

const (
	wHosts = 5
	wState = 11
	wPort  = 5
	wReq   = 5
)

func (m *Model) columns() columns {
	c := columns{sep: " ", id: m.want.id, hosts: wHosts, state: wState, port: wPort, req: wReq, showHosts: m.opt.Hosts != nil}
	if m.width >= 100 {
		c.sep = "  "
	}
	sep := len(c.sep)
	fixed := 2 + c.id + sep + c.state + sep + c.port + sep + c.req + sep
	if c.showHosts {
		fixed += c.hosts + sep
	}
	avail := m.width - fixed
	// Flexible columns in order of importance: slug and domain are always
	// shown (cut to fit), name and local only when they fit.
	type flex struct {
		w          *int
		show       *bool
		soft, want int // soft: first-pass width; want: the widest value
		must       bool
	}
	var showSlug, showDomain bool
	cols := []flex{
		{&c.slug, &showSlug, 12, m.want.slug, true},
		{&c.domain, &showDomain, 20, m.want.domain, true},
		{&c.name, &c.showName, 10, m.want.name, false},
		{&c.local, &c.showLocal, 14, m.want.local, false},
	}
	// First pass: each column gets a modest width if that fits (the must
	// columns get what is left); second pass: what remains widens them,
	// in the same order, towards the width they want.
	used := 0
	var shown []flex
	for _, f := range cols {
		w := min(f.soft, f.want)
		gap := 0
		if used > 0 {
			gap = sep
		}
		if used+gap+w > avail {
			if !f.must {
				continue
			}
			w = max(min(6, f.want), avail-used-gap)
		}
		*f.w, *f.show = w, true
		used += gap + w
		shown = append(shown, f)
	}
	for _, f := range shown {
		if add := min(avail-used, f.want-*f.w); add > 0 {
			*f.w += add
			used += add
		}
	}
	if !c.showName {
		c.name = 0
	}
	if !c.showLocal {
		c.local = 0
	}
	return c
}

// Layout heights.
func (m *Model) footerHeight() int {
	if m.showHelp {
		return lipgloss.Height(m.help.View(m.keys))
	}
	return 1
}

func (m *Model) noticeLines() []string {
	if m.proxyErr == nil {
		return nil
	}
	ways := ListenHelp(m.proxyErr)
	if len(ways) == 0 {
		return nil
	}
	why := oneLine(m.proxyErr)
	var le *devproxy.ListenError
	if errors.As(m.proxyErr, &le) {
		why = fmt.Sprintf("cannot listen on %s: %v", le.Addr, le.Err)
		if le.HTTPS {
			why = fmt.Sprintf("cannot listen on %s for HTTPS: %v", le.Addr, le.Err)
		}
	}
	out := []string{"✖ proxy not running: " + why, fmt.Sprintf("  ways out (siteplex retries every %s):", m.opt.RetryEvery)}
	for _, w := range ways {
		out = append(out, "    "+w)
	}
	return out
}

// bodyHeight is what the table and the pane share.
func (m *Model) bodyHeight() int {
	// header, table header, pane title, status line, footer, notice
	return max(2, m.height-4-m.footerHeight()-len(m.noticeLines()))
}

func (m *Model) tableHeight() int {
	body := m.bodyHeight()
	want := body * 55 / 100
	if n := len(m.rows); n < want {
		want = max(n, min(3, body/2))
	}
	return max(1, min(want, body-1))
}

func (m *Model) paneHeight() int {
	return max(1, m.bodyHeight()-m.tableHeight())
}

// View draws the screen. It only reads the model.
func (m *Model) View() string {
	if m.width <= 0 || m.height <= 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(m.width * m.height * 2)
	line := func(s string) {
		b.WriteString(ansi.Truncate(s, m.width, "…"))
		b.WriteByte('\n')
	}
	line(m.viewHeader())
	c := m.columns()
	line(m.viewTableHeader(c))
	th := m.tableHeight()
	m.viewRows(c, th, line)
	for _, n := range m.noticeLines() {
		line(m.st.Error.Render(ansi.Truncate(n, m.width, "…")))
	}
	line(m.viewPaneTitle())
	m.viewPane(m.paneHeight(), line)
	line(m.viewStatus())
	// help cuts the short view only when its ellipsis fits, and never
	// cuts the full view: cut every line here.
	for i, l := range strings.Split(m.viewHelp(), "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(ansi.Truncate(l, m.width, "…"))
	}
	return b.String()
}

func (m *Model) viewHeader() string {
	// The site source goes first when the line is too narrow.
	if h := m.header(false, true); ansi.StringWidth(h) <= m.width {
		return h
	}
	if h := m.header(false, false); ansi.StringWidth(h) <= m.width {
		return h
	}
	return m.header(true, false)
}

// header is the top line; compact shortens the proxy's addresses to their
// port and the forced site to its marker, for narrow terminals; source
// names the framework the sites come from.
func (m *Model) header(compact, source bool) string {
	st := m.st
	dot := st.HeaderDim.Render(" · ")
	parts := []string{st.HeaderTitle.Render(" siteplex")}
	if m.opt.Project != "" {
		parts = append(parts, st.Header.Render(m.opt.Project))
	}
	if m.opt.Database != "" {
		parts = append(parts, st.HeaderDim.Render(m.opt.Database))
	}
	if src := sourceName(m.sites); src != "" && source {
		parts = append(parts, st.HeaderDim.Render("sites from "+src))
	}
	switch {
	case m.proxyErr != nil:
		parts = append(parts, st.HeaderWarn.Render("proxy not running"))
	case !m.started:
		parts = append(parts, st.HeaderDim.Render("proxy starting…"))
	case len(m.addrs) > 0:
		parts = append(parts, st.Header.Render("proxy "+fmtAddrs(m.addrs, compact)))
		if len(m.https) > 0 {
			parts = append(parts, st.Header.Render("https "+fmtAddrs(m.https, compact)))
		}
	}
	if m.opt.Attached != "" {
		parts = append(parts, st.HeaderDim.Render(m.opt.Attached))
	}
	if m.forcedID != 0 {
		f := fmt.Sprintf("forced ★ %d", m.forcedID)
		if compact {
			f = fmt.Sprintf("★ %d", m.forcedID)
		}
		for i := range m.sites {
			if m.sites[i].ID == m.forcedID {
				f += " " + m.sites[i].Slug
				break
			}
		}
		parts = append(parts, st.Forced.Render(f))
	} else {
		parts = append(parts, st.HeaderDim.Render("no forced site"))
	}
	parts = append(parts, st.HeaderDim.Render(string(m.mode)))
	return strings.Join(parts, dot)
}

// sourceName names the framework the sites come from, as the header says
// it ("" when not known): Wagtail, django-tenants, django-pgschemas,
// django_site, or siteplex.toml.
func sourceName(list []sites.Site) string {
	for i := range list {
		switch list[i].Source {
		case sites.SourceWagtail:
			return "Wagtail"
		case sites.SourceTenants:
			return "django-tenants"
		case sites.SourcePGSchemas:
			return "django-pgschemas"
		case sites.SourceDjangoSite:
			return "django_site"
		case sites.SourceConfig:
			return "siteplex.toml"
		}
	}
	return ""
}

// fmtAddrs shows listen addresses as the header in docs/tui.md does: one address as
// is, several on one port as ":80 (127.0.0.1, ::1)"; compact keeps only
// the port.
func fmtAddrs(addrs []string, compact bool) string {
	port := portOf(addrs[0])
	hosts := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if portOf(a) != port {
			return strings.Join(addrs, ", ")
		}
		hosts = append(hosts, strings.Trim(strings.TrimSuffix(a, ":"+port), "[]"))
	}
	switch {
	case compact:
		return ":" + port
	case len(addrs) == 1:
		return addrs[0]
	}
	return ":" + port + " (" + strings.Join(hosts, ", ") + ")"
}

// cell pads or cuts s to exactly w cells.
func cell(s string, w int) string {
	if w <= 0 {
		return ""
	}
	s = sanitize(s)
	sw := ansi.StringWidth(s)
	if sw > w {
		return ansi.Truncate(s, w, "…")
	}
	return s + strings.Repeat(" ", w-sw)
}

func rcell(s string, w int) string {
	sw := ansi.StringWidth(s)
	if sw > w {
		return ansi.Truncate(s, w, "…")
	}
	return strings.Repeat(" ", w-sw) + s
}

func (m *Model) viewTableHeader(c columns) string {
	var parts []string
	parts = append(parts, "  "+rcell("ID", c.id), cell("SLUG", c.slug))
	if c.showName {
		parts = append(parts, cell("NAME", c.name))
	}
	parts = append(parts, cell("DOMAIN", c.domain))
	if c.showLocal {
		parts = append(parts, cell("LOCAL", c.local))
	}
	if c.showHosts {
		parts = append(parts, cell("HOSTS", c.hosts))
	}
	parts = append(parts, cell("STATE", c.state), rcell("PORT", c.port), rcell("REQ", c.req))
	s := strings.Join(parts, c.sep)
	if !m.paneFocus {
		return m.st.TableHeaderFocused.Render(s)
	}
	return m.st.TableHeader.Render(s)
}

func (m *Model) viewRows(c columns, h int, line func(string)) {
	if len(m.rows) == 0 {
		msg := "no sites"
		switch {
		case m.filter != "":
			msg = "no site matches “" + m.filter + "” — esc clears the filter"
		case m.loadErr != nil:
			msg = "no sites yet: " + oneLine(m.loadErr) + " — retrying every " + m.opt.RetryEvery.String()
		case !m.started && m.proxyErr == nil:
			msg = "loading sites…"
		}
		st := m.st.Dim
		if m.loadErr != nil && m.filter == "" {
			st = m.st.Error
		}
		wrapped := strings.Split(ansi.Wrap(msg, max(10, m.width-2), ""), "\n")
		for i := 0; i < h; i++ {
			if i < len(wrapped) {
				line("  " + st.Render(wrapped[i]))
			} else {
				line("")
			}
		}
		return
	}
	end := min(len(m.rows), m.offset+h)
	for r := m.offset; r < end; r++ {
		line(m.viewRow(c, r))
	}
	for i := end - m.offset; i < h; i++ {
		line("")
	}
}

func (m *Model) viewRow(c columns, r int) string {
	s := &m.sites[m.rows[r]]
	st := m.st
	sel := r == m.cursor
	// paint styles one piece of the row; on the selected row every piece
	// also gets the selection's background (a piece's own reset would end
	// a background set around the whole row).
	paint := func(sty lipgloss.Style, v string) string {
		if sel {
			return sty.Inherit(st.Selected).Render(v)
		}
		return sty.Render(v)
	}
	cur := " "
	if sel {
		cur = "›"
	}
	star := " "
	if s.ID == m.forcedID {
		star = "★"
	}
	usable := s.Usable()
	rowStyle := st.Plain
	switch {
	case !usable:
		rowStyle = st.Problem
	case !s.Enabled:
		rowStyle = st.Disabled
	}
	text := func(v string, w int) string { return paint(rowStyle, cell(v, w)) }
	right := func(v string, w int) string { return paint(rowStyle, rcell(v, w)) }
	parts := make([]string, 0, 10)
	parts = append(parts, paint(st.Cursor, cur)+paint(st.Forced, star)+right(strconv.FormatInt(s.ID, 10), c.id), text(s.Slug, c.slug))
	if c.showName {
		parts = append(parts, text(s.Name, c.name))
	}
	domain := s.Domain
	if !usable {
		domain = "⚠ " + problemShort(s)
	}
	parts = append(parts, text(domain, c.domain))
	if c.showLocal {
		l := s.LocalDomain
		if !usable || l == "" {
			l = "–"
		}
		parts = append(parts, text(l, c.local))
	}
	ss, known := m.status[s.Slug]
	if c.showHosts {
		h := m.hosts[s.ID]
		if !usable {
			h = HostsNA
		}
		hs := st.HostsOff
		switch h {
		case HostsAll:
			hs = st.HostsOK
		case HostsSome:
			hs = st.HostsSome
		case HostsNone, HostsNA, HostsUnknown:
		}
		parts = append(parts, paint(hs, cell(hostsGlyph(h), c.hosts)))
	}
	switch {
	case !usable:
		parts = append(parts, text("–", c.state), right("–", c.port), right("–", c.req))
	case !s.Enabled && (!known || ss.State == devproxy.Stopped || ss.State == ""):
		parts = append(parts, text("– disabled", c.state), right("–", c.port), right(reqCount(ss.Requests), c.req))
	default:
		state := ss.State
		if state == "" {
			state = devproxy.Stopped
		}
		g := stateGlyph(state)
		if state == devproxy.Crashed && ss.LastExit != nil {
			g = "✖ exit " + strconv.Itoa(*ss.LastExit)
		}
		sty, ok := st.StateStyles[state]
		if !ok {
			sty = st.Plain
		}
		port := "–"
		if ss.Port > 0 && (state == devproxy.Running || state == devproxy.Starting) {
			port = strconv.Itoa(ss.Port)
		}
		// The identity probe's verdict on the process (✓ or a loud ✗).
		if mark := ss.Identity.Mark(); mark != "" && state == devproxy.Running {
			g += " " + mark
			if mark == "✗" {
				sty = st.Error
			}
		}
		parts = append(parts, paint(sty, cell(g, c.state)), right(port, c.port), right(reqCount(ss.Requests), c.req))
	}
	out := strings.Join(parts, paint(st.Plain, c.sep))
	if sel {
		if pad := m.width - ansi.StringWidth(out); pad > 0 {
			out += paint(st.Plain, strings.Repeat(" ", pad))
		}
	}
	return out
}

func reqCount(n int64) string {
	if n >= 100000 {
		return humanize.SIWithDigits(float64(n), 0, "")
	}
	return strconv.FormatInt(n, 10)
}

func problemShort(s *sites.Site) string {
	if len(s.Problems) == 0 {
		return ""
	}
	p := s.Problems[0]
	switch {
	case strings.HasPrefix(p, "invalid domain"):
		return "invalid domain " + strconv.Quote(s.Domain)
	case strings.HasPrefix(p, "duplicate local domain"):
		return "duplicate local domain"
	}
	return p
}

func (m *Model) viewPaneTitle() string {
	st := m.st
	var b strings.Builder
	if m.paneFocus {
		b.WriteString(st.TabFocused.Render("▸"))
	} else {
		b.WriteString(st.Rule.Render("─"))
	}
	b.WriteString(st.Rule.Render("─ "))
	for i, t := range []tab{tabLogs, tabRequests, tabInfo} {
		if i > 0 {
			b.WriteString(st.Rule.Render(" ─ "))
		}
		switch {
		case t == m.tab && m.paneFocus:
			b.WriteString(st.TabFocused.Render("[" + t.String() + "]"))
		case t == m.tab:
			b.WriteString(st.TabActive.Render("[" + t.String() + "]"))
		default:
			b.WriteString(st.Tab.Render(t.String()))
		}
	}
	b.WriteString(" ")
	left := b.String()
	right := m.paneInfo()
	if right != "" {
		right = " " + right + " "
	}
	fill := m.width - ansi.StringWidth(left) - ansi.StringWidth(right) - 2
	if fill < 1 { // no room for the facts
		return left + st.Rule.Render(strings.Repeat("─", max(1, m.width-ansi.StringWidth(left))))
	}
	return left + st.Rule.Render(strings.Repeat("─", fill)) + st.PaneInfo.Render(right) + st.Rule.Render("──")
}

// paneInfo is the right side of the pane title: the selected site's
// process facts.
func (m *Model) paneInfo() string {
	s := m.selected()
	if s == nil {
		return ""
	}
	parts := []string{s.Slug}
	ss := m.status[s.Slug]
	if ss.PID > 0 && (ss.State == devproxy.Running || ss.State == devproxy.Starting) {
		parts = append(parts, "pid "+strconv.Itoa(ss.PID))
		if !ss.StartedAt.IsZero() {
			parts = append(parts, "up "+shortDuration(m.now.Sub(ss.StartedAt)))
		}
	}
	parts = append(parts, "restarts "+strconv.Itoa(ss.Restarts))
	if m.tab == tabLogs && !m.follow {
		parts = append(parts, "paused")
	}
	return strings.Join(parts, " · ")
}

func shortDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func (m *Model) viewPane(h int, line func(string)) {
	s := m.selected()
	var lines []string
	switch {
	case s == nil:
		lines = []string{m.st.Dim.Render("  no site selected")}
	case m.tab == tabLogs:
		lines = m.viewLogs(s, h)
	case m.tab == tabRequests:
		lines = m.viewRequests(s, h)
	case m.tab == tabInfo:
		lines = m.viewInfo(s, h)
	}
	for i := 0; i < h; i++ {
		if i < len(lines) {
			line(lines[i])
		} else {
			line("")
		}
	}
}

func (m *Model) viewLogs(s *sites.Site, h int) []string {
	if len(m.logs) == 0 {
		hint := "  no output yet — s starts the process"
		if u := m.siteURL(s); u != "" {
			hint += ", or a request to " + u + " does"
		}
		return []string{m.st.Dim.Render(hint)}
	}
	start := m.logOff
	if m.follow {
		start = m.logBottom()
	}
	start = min(max(0, start), len(m.logs))
	end := min(len(m.logs), start+h)
	q := strings.ToLower(m.search)
	out := make([]string, 0, end-start)
	for i := start; i < end; i++ {
		l := m.logs[i]
		mark := " "
		if i == m.searchHit {
			mark = m.st.Match.Render("▶")
		}
		ts := mark + m.st.LogTime.Render(l.Time.Format("15:04:05"))
		text := ansi.Truncate(l.Text, max(1, m.width-11), "…")
		switch {
		case q != "" && strings.Contains(strings.ToLower(text), q):
			text = highlight(text, q, m.st.Match)
		case l.System:
			text = m.st.LogSystem.Render(text)
		case l.Stderr:
			text = m.st.LogStderr.Render(text)
		}
		out = append(out, ts+"  "+text)
	}
	return out
}

// highlight styles every case-insensitive occurrence of q in s.
func highlight(s, q string, st lipgloss.Style) string {
	ls := strings.ToLower(s)
	if len(ls) != len(s) {
		return s // case folding changed lengths: leave it plain
	}
	var b strings.Builder
	for {
		i := strings.Index(ls, q)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(st.Render(s[i : i+len(q)]))
		s, ls = s[i+len(q):], ls[i+len(q):]
	}
}

func (m *Model) viewRequests(s *sites.Site, h int) []string {
	var recs []devproxy.RequestRecord
	for i := range m.reqs {
		if m.reqs[i].Site == s.Slug {
			recs = append(recs, m.reqs[i])
		}
	}
	if len(recs) == 0 {
		return []string{m.st.Dim.Render("  no requests yet")}
	}
	// Newest at the bottom; paneOff scrolls back from the end.
	end := max(0, len(recs)-m.paneOff)
	start := max(0, end-h)
	pathW := max(10, m.width-50)
	out := make([]string, 0, end-start)
	for _, r := range recs[start:end] {
		status := strconv.Itoa(r.Status)
		sty := m.st.Status2xx
		switch {
		case r.Status >= 500:
			sty = m.st.Status5xx
		case r.Status >= 400:
			sty = m.st.Status4xx
		case r.Status >= 300:
			sty = m.st.Status3xx
		}
		out = append(out, fmt.Sprintf("%s  %s %s %s %s %s",
			m.st.LogTime.Render(r.Time.Format("15:04:05")),
			cell(r.Method, 6), cell(sanitize(r.Path), pathW), sty.Render(rcell(status, 3)),
			rcell(fmtDuration(r.Duration), 8), rcell(humanize.Bytes(uint64(max(0, r.Bytes))), 8)))
	}
	return out
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func (m *Model) viewInfo(s *sites.Site, h int) []string {
	kv := func(k, v string) string { return m.st.InfoKey.Render(cell("  "+k, 15)) + v }
	ss := m.status[s.Slug]
	var out []string
	out = append(out, kv("site", fmt.Sprintf("%d %s — %s", s.ID, s.Slug, s.Name)))
	out = append(out, kv("domain", s.Domain))
	if s.RealDomain != nil {
		out = append(out, kv("real domain", *s.RealDomain))
	}
	out = append(out, kv("local domain", orDash(s.LocalDomain)))
	if len(s.Aliases) > 0 {
		out = append(out, kv("aliases", strings.Join(s.Aliases, ", ")))
	}
	en := "yes"
	if !s.Enabled {
		en = "no (disabled in django_multisite_plus_site)"
	}
	out = append(out, kv("enabled", en))
	if u := m.siteURL(s); u != "" {
		out = append(out, kv("url", u))
	}
	if m.opt.Hosts != nil {
		hs := map[HostsState]string{HostsAll: "in " + m.opt.Hosts.Path(), HostsSome: "partly in " + m.opt.Hosts.Path(),
			HostsNone: "not in " + m.opt.Hosts.Path(), HostsNA: "never written (problems)", HostsUnknown: "unknown"}[m.hosts[s.ID]]
		if !s.Usable() {
			hs = "never written (problems)"
		}
		if m.hostsErr != nil {
			hs = "unknown: " + oneLine(m.hostsErr)
		}
		out = append(out, kv("hosts", hs))
	}
	state := string(ss.State)
	if state == "" {
		state = string(devproxy.Stopped)
	}
	if ss.LastExit != nil {
		state += fmt.Sprintf(" (last exit %d)", *ss.LastExit)
	}
	if !ss.BackoffUntil.IsZero() && ss.State == devproxy.Backoff {
		state += ", retry after " + ss.BackoffUntil.Format("15:04:05")
	}
	out = append(out, kv("process", state))
	if id := ss.Identity; id != nil && id.Detail != "" {
		v := id.Detail
		if id.Checked && !id.OK {
			v = m.st.Error.Render(v)
		}
		out = append(out, kv("identity", v))
	}
	if ss.PID > 0 {
		out = append(out, kv("pid / port", fmt.Sprintf("%d / %d", ss.PID, ss.Port)))
	}
	out = append(out, kv("requests", strconv.FormatInt(ss.Requests, 10)+fmt.Sprintf(" · restarts %d", ss.Restarts)))
	if line := m.preloadInfo(ss); line != "" {
		out = append(out, kv("preload", line))
	}
	for _, p := range s.Problems {
		out = append(out, kv("problem", m.st.Error.Render(p)))
	}
	if m.paneOff > 0 {
		out = out[min(m.paneOff, len(out)):]
	}
	return out
}

// preloadInfo is the Info pane's preload line for a site (docs/preload.md):
// how its process started, "" when preload was not asked for.
func (m *Model) preloadInfo(ss devproxy.SiteStatus) string {
	pre := m.preload
	switch {
	case pre == nil:
		return ""
	case ss.Preloaded:
		if pre.ParentPID > 0 {
			return fmt.Sprintf("forked from the warm parent (pid %d)", pre.ParentPID)
		}
		return "forked from a warm parent"
	case ss.PreloadReason != "":
		return m.st.Error.Render("started the plain way: " + ss.PreloadReason)
	case !pre.On || pre.Reason != "":
		return m.st.Error.Render("off: " + pre.Reason)
	case pre.ParentPID > 0:
		return fmt.Sprintf("on: the next start forks from pid %d", pre.ParentPID)
	}
	return "on: the next start boots a warm parent"
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func (m *Model) viewStatus() string {
	st := m.st
	switch m.kmode {
	case modeFilter:
		return st.Prompt.Render("/") + " " + m.filter + "█" + st.Dim.Render(fmt.Sprintf("   %d of %d sites", len(m.rows), len(m.sites)))
	case modeSearch:
		return st.Prompt.Render("search logs:") + " " + m.search + "█"
	case modeConfirm:
		n := m.running()
		what := "processes are"
		if n == 1 {
			what = "process is"
		}
		return st.Confirm.Render(fmt.Sprintf("%d %s running. Quit and stop them? (y/n)", n, what))
	case modeNormal:
	}
	if m.statusText != "" {
		if m.statusErr {
			return st.Error.Render("✖ " + m.statusText)
		}
		return st.Info.Render(m.statusText)
	}
	if m.filter != "" {
		return st.Dim.Render(fmt.Sprintf("filter “%s”: %d of %d sites · esc clears", m.filter, len(m.rows), len(m.sites)))
	}
	if m.search != "" && m.tab == tabLogs {
		return st.Dim.Render("search “" + m.search + "” · n/N next/previous")
	}
	return ""
}

// viewHelp is the footer: the short help, with "? help" and "q quit"
// moved first when the line would be cut; the full help after `?`.
func (m *Model) viewHelp() string {
	if m.showHelp {
		return m.help.View(m.keys)
	}
	short := m.keys.ShortHelp()
	h := m.help
	h.Width = 0
	if out := h.ShortHelpView(short); ansi.StringWidth(out) <= m.width {
		return out
	}
	first := []key.Binding{m.keys.Help, m.keys.Quit}
	for _, b := range short {
		if b.Help() != m.keys.Help.Help() && b.Help() != m.keys.Quit.Help() {
			first = append(first, b)
		}
	}
	return m.help.ShortHelpView(first)
}
