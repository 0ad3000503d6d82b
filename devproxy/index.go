package devproxy

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/siteplex/siteplex/devproxy/supervisor"
)

// IndexSite is one site on the index page (and in its JSON form).
type IndexSite struct {
	ID          int64    `json:"id"`
	Slug        string   `json:"slug"`
	Name        string   `json:"name"`
	Domain      string   `json:"domain"`
	LocalDomain string   `json:"local_domain"`
	URL         string   `json:"url,omitempty"`
	Enabled     bool     `json:"enabled"`
	Routed      bool     `json:"routed"`
	Forced      bool     `json:"forced"`
	State       State    `json:"state,omitempty"`
	Requests    int64    `json:"requests"`
	Problems    []string `json:"problems"`
	// Identity is the identity probe's verdict (docs/engine.md,
	// "Identity"); nil when there is none yet.
	Identity *Identity `json:"identity,omitempty"`
	// Wildcards are the site's wildcard aliases, routed by matching.
	Wildcards []string `json:"wildcards,omitempty"`
}

// Index is the JSON form of the index page.
type Index struct {
	Listen       []string    `json:"listen"`
	HTTPS        []string    `json:"https"`
	Mode         Mode        `json:"mode"`
	ForcedSiteID int64       `json:"forced_site_id"`
	Sites        []IndexSite `json:"sites"`
	// Unrouted are wildcard aliases that are not routed ("slug: *").
	Unrouted []string `json:"unrouted,omitempty"`
	// SitesError is Status.SitesError: why the sites could not be read.
	SitesError string `json:"sites_error,omitempty"`
}

// serveIndex answers siteplex.localhost and localhost without a chosen
// site (the routing table sends nothing else here): the API under /api/,
// else the index page, HTML or JSON (Accept: application/json).
func (e *Engine) serveIndex(w http.ResponseWriter, r *http.Request, t *routeTable) {
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/api" {
		e.serveAPI(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "siteplex: the index page only answers GET", http.StatusMethodNotAllowed)
		return
	}
	idx := e.index(t, r)
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, idx)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, renderIndex(idx))
}

// serveForeign answers a Host that is no site and no loopback name: a
// short 404 that links to the index and shows nothing else. A web page
// whose name an attacker points at 127.0.0.1 (DNS rebinding) sends its own
// name as Host and lands here, never on the site list.
//
// While the sites cannot be read (the database is down), the name may be
// a site's all the same: the page then says so, without the error itself
// (it names the database's host, which a foreign page must not read); the
// index on a loopback name shows the error.
func (e *Engine) serveForeign(w http.ResponseWriter, r *http.Request) {
	u := e.indexURL(r)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Siteplex-Error", "1")
	w.WriteHeader(http.StatusNotFound)
	if e.sitesError() != "" {
		fmt.Fprintf(w, "<!doctype html><meta charset=utf-8><title>siteplex: the sites could not be read</title>\n<p>No site siteplex knows answers to this name, but siteplex could not read the sites (it tries again every few seconds). <a href=\"%s\">The index</a> says why.</p>\n",
			html.EscapeString(u))
		return
	}
	fmt.Fprintf(w, "<!doctype html><meta charset=utf-8><title>siteplex: no such site</title>\n<p>No site here answers to this name. <a href=\"%s\">The sites siteplex serves</a>.</p>\n", html.EscapeString(u))
}

// wantsJSON reports whether the client asks for application/json.
func wantsJSON(r *http.Request) bool {
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(a, "application/json") {
			return true
		}
	}
	return false
}

// index builds the index for request r (the site links use the scheme
// and port it reaches them on: see linkBase).
func (e *Engine) index(t *routeTable, r *http.Request) Index {
	st := e.Status()
	states := make(map[string]SiteStatus, len(st.Sites))
	for _, s := range st.Sites {
		states[s.Slug] = s
	}
	idx := Index{Listen: st.Listen, HTTPS: st.HTTPS, Mode: st.Mode, ForcedSiteID: st.ForcedSiteID, Sites: []IndexSite{}, Unrouted: t.unrouted,
		SitesError: st.SitesError}
	for i := range t.all {
		s := &t.all[i]
		is := IndexSite{ID: s.ID, Slug: s.Slug, Name: s.Name, Domain: s.Domain, LocalDomain: s.LocalDomain,
			Enabled: s.Enabled, Forced: s.ID == t.forced && t.forced != 0, Problems: s.Problems}
		if is.Problems == nil {
			is.Problems = []string{}
		}
		if rt := t.bySlug[s.Slug]; rt != nil && rt.site == s {
			is.Routed = true
			is.URL = e.linkBase(r, s.LocalDomain) + "/"
			ss := states[s.Slug]
			is.State, is.Requests, is.Identity = ss.State, ss.Requests, ss.Identity
			is.Wildcards = s.Wildcards()
		}
		idx.Sites = append(idx.Sites, is)
	}
	return idx
}

// stateGlyph is the symbol the UI uses for a state.
func stateGlyph(s State) string {
	switch s {
	case Running:
		return "● running"
	case Starting:
		return "◐ starting"
	case Crashed:
		return "✖ crashed"
	case Backoff:
		return "✖ backoff"
	case Stopped:
		return "○ stopped"
	}
	return "–"
}

// identityHTML shows a verdict: ✓ in green, ✗ loud in red, anything else
// muted.
func identityHTML(id *Identity) string {
	switch {
	case id == nil:
		return `<span class=muted>–</span>`
	case id.Checked && id.OK:
		return `<span class=ok>` + html.EscapeString(id.Detail) + `</span>`
	case id.Checked:
		return `<strong class=warn>` + html.EscapeString(id.Detail) + `</strong>`
	}
	return `<span class=muted>` + html.EscapeString(id.Detail) + `</span>`
}

// renderIndex renders the HTML index page.
func renderIndex(idx Index) string {
	var b strings.Builder
	esc := html.EscapeString
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>siteplex</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
th,td{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}.muted{color:#888}.warn{color:#b00}.ok{color:#070}</style>
</head><body><h1>siteplex</h1>
`)
	listen := append([]string(nil), idx.Listen...)
	for _, a := range idx.HTTPS {
		listen = append(listen, "https://"+a)
	}
	fmt.Fprintf(&b, "<p class=muted>mode %s · listening on %s", esc(string(idx.Mode)), esc(strings.Join(listen, ", ")))
	if idx.ForcedSiteID != 0 {
		fmt.Fprintf(&b, " · forced SITE_ID %d", idx.ForcedSiteID)
	}
	b.WriteString("</p>\n")
	if idx.SitesError != "" {
		fmt.Fprintf(&b, "<p class=warn><strong>siteplex could not read the sites:</strong> %s.</p>\n", esc(idx.SitesError))
	}
	b.WriteString("<table><tr><th></th><th>ID</th><th>Slug</th><th>Name</th><th>Domain</th><th>Local</th><th>State</th><th>Identity</th><th>Requests</th></tr>\n")
	for _, s := range idx.Sites {
		mark := ""
		if s.Forced {
			mark = "★"
		}
		local := esc(s.LocalDomain)
		if s.URL != "" {
			local = fmt.Sprintf(`<a href="%s">%s</a>`, esc(s.URL), esc(s.LocalDomain))
		}
		for _, w := range s.Wildcards {
			local += `<br><span class=muted>` + esc(w) + `</span>`
		}
		state := stateGlyph(s.State)
		switch {
		case len(s.Problems) > 0 && s.Routed:
			// Routed all the same (a name left out of the hosts file or
			// not routed): its state, then what is wrong.
			state += `<br><span class=warn>⚠ ` + esc(strings.Join(s.Problems, "; ")) + `</span>`
		case len(s.Problems) > 0:
			state = `<span class=warn>⚠ ` + esc(strings.Join(s.Problems, "; ")) + `</span>`
		case !s.Enabled:
			state = `<span class=muted>disabled</span>`
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>\n",
			mark, s.ID, esc(s.Slug), esc(s.Name), esc(s.Domain), local, state, identityHTML(s.Identity), s.Requests)
	}
	b.WriteString("</table>\n")
	if len(idx.Sites) == 0 && idx.SitesError == "" {
		b.WriteString("<p class=muted>No sites yet.</p>\n")
	}
	for _, u := range idx.Unrouted {
		fmt.Fprintf(&b, "<p class=warn>Wildcard alias %s is not routed: it would route every name there.</p>\n", esc(u))
	}
	b.WriteString(`<p class=muted>On localhost, <code>?siteplex-site=SLUG</code> picks the site for this browser; <code>?siteplex-site=</code> clears it. JSON: <code>Accept: application/json</code>; status: <a href="/api/status">/api/status</a>.</p>
</body></html>
`)
	return b.String()
}

// serveBackendError answers when a site's process cannot take the request:
// a crash loop in backoff or a failed boot get a 502 page with the last
// lines of the process's output.
func (e *Engine) serveBackendError(w *recorder, r *http.Request, rt *siteRoute, err error) {
	if w.status != 0 {
		return // the answer has begun; nothing more can be said
	}
	var (
		title  string
		detail string
		tail   []string
		code   = http.StatusBadGateway
	)
	var be *supervisor.BackoffError
	var bootErr *supervisor.BootError
	switch {
	case errors.As(err, &be):
		title = fmt.Sprintf("%s keeps crashing", rt.site.Slug)
		wait := max(time.Until(be.Until).Round(time.Second), 0)
		detail = fmt.Sprintf("Its process exited before it was ready several times in a row; siteplex tries again in %s, or at once when you change a .py file.", wait)
		tail = be.Tail
		if wait > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds()+0.999)))
		}
	case errors.As(err, &bootErr):
		title = fmt.Sprintf("%s did not start", rt.site.Slug)
		detail = bootErr.Error()
		tail = bootErr.Tail
	case errors.Is(err, supervisor.ErrClosed):
		title = "siteplex is shutting down"
		detail = err.Error()
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		title = fmt.Sprintf("%s did not answer in time", rt.site.Slug)
		detail = err.Error()
		code = http.StatusGatewayTimeout
	default:
		title = fmt.Sprintf("%s is not reachable", rt.site.Slug)
		detail = err.Error()
	}
	if len(tail) > supervisor.TailLines {
		tail = tail[len(tail)-supervisor.TailLines:]
	}
	var b strings.Builder
	b.WriteString("<!doctype html><meta charset=utf-8><title>siteplex: ")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</title>\n<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}pre{background:#1e1e1e;color:#eee;padding:1em;overflow:auto}</style>\n<h1>")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</h1>\n<p>")
	b.WriteString(html.EscapeString(detail))
	b.WriteString("</p>\n")
	if id := e.identityOf(rt.site.Slug); id != nil && id.Detail != notRunning {
		b.WriteString("<style>.warn{color:#b00}.ok{color:#070}.muted{color:#888}</style><p>Identity: ")
		b.WriteString(identityHTML(id))
		b.WriteString("</p>\n")
	}
	if len(tail) > 0 {
		fmt.Fprintf(&b, "<h2>Last %d lines of its output</h2>\n<pre>", len(tail))
		for _, l := range tail {
			b.WriteString(html.EscapeString(l))
			b.WriteByte('\n')
		}
		b.WriteString("</pre>\n")
	}
	b.WriteString("<p><a href=\"" + html.EscapeString(e.indexURL(r)) + "\">All sites</a></p>\n")
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Siteplex-Error", "1")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, b.String())
}
