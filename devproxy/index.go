package devproxy

import (
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"strings"
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
}

// Index is the JSON form of the index page.
type Index struct {
	Listen       []string    `json:"listen"`
	Mode         Mode        `json:"mode"`
	ForcedSiteID int64       `json:"forced_site_id"`
	Host         string      `json:"host"`
	Known        bool        `json:"known_host"`
	Sites        []IndexSite `json:"sites"`
}

// serveIndex answers siteplex.localhost, localhost without a chosen site and
// unknown hosts: the API under /api/ (for allowed hosts only), else the
// index page, HTML or JSON (Accept: application/json). Unknown hosts get
// the page with status 404; nothing is forwarded.
func (e *Engine) serveIndex(w http.ResponseWriter, r *http.Request, t *routeTable) {
	var buf [256]byte
	h, _ := normHost(r.Host, &buf)
	known := h == IndexHost || isLocalName(h) || h == ""
	h = strings.Clone(h)
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/api" {
		e.serveAPI(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "siteplex: the index page only answers GET", http.StatusMethodNotAllowed)
		return
	}
	idx := e.index(t, r.Host)
	idx.Host, idx.Known = h, known
	code := http.StatusOK
	if !known {
		code = http.StatusNotFound
	}
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(idx)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(renderIndex(idx)))
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

// index builds the index for a request that arrived with Host reqHost
// (its port goes into the site links).
func (e *Engine) index(t *routeTable, reqHost string) Index {
	st := e.Status()
	states := make(map[string]SiteStatus, len(st.Sites))
	for _, s := range st.Sites {
		states[s.Slug] = s
	}
	port := ""
	if _, p, err := net.SplitHostPort(reqHost); err == nil && p != "80" {
		port = ":" + p
	}
	idx := Index{Listen: st.Listen, Mode: st.Mode, ForcedSiteID: st.ForcedSiteID, Sites: []IndexSite{}}
	for i := range t.all {
		s := &t.all[i]
		is := IndexSite{ID: s.ID, Slug: s.Slug, Name: s.Name, Domain: s.Domain, LocalDomain: s.LocalDomain,
			Enabled: s.Enabled, Forced: s.ID == t.forced && t.forced != 0, Problems: s.Problems}
		if is.Problems == nil {
			is.Problems = []string{}
		}
		if rt := t.bySlug[s.Slug]; rt != nil && rt.site == s {
			is.Routed = true
			is.URL = "http://" + s.LocalDomain + port + "/"
			ss := states[s.Slug]
			is.State, is.Requests = ss.State, ss.Requests
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

// renderIndex renders the HTML index page.
func renderIndex(idx Index) string {
	var b strings.Builder
	esc := html.EscapeString
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>siteplex</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
th,td{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}.muted{color:#888}.warn{color:#b00}</style>
</head><body><h1>siteplex</h1>
`)
	if !idx.Known {
		fmt.Fprintf(&b, "<p class=warn>No site answers to <code>%s</code>. siteplex only forwards requests for the sites below.</p>\n", esc(idx.Host))
	}
	fmt.Fprintf(&b, "<p class=muted>mode %s · listening on %s", esc(string(idx.Mode)), esc(strings.Join(idx.Listen, ", ")))
	if idx.ForcedSiteID != 0 {
		fmt.Fprintf(&b, " · forced SITE_ID %d", idx.ForcedSiteID)
	}
	b.WriteString("</p>\n<table><tr><th></th><th>ID</th><th>Slug</th><th>Name</th><th>Domain</th><th>Local</th><th>State</th><th>Requests</th></tr>\n")
	for _, s := range idx.Sites {
		mark := ""
		if s.Forced {
			mark = "★"
		}
		local := esc(s.LocalDomain)
		if s.URL != "" {
			local = fmt.Sprintf(`<a href="%s">%s</a>`, esc(s.URL), esc(s.LocalDomain))
		}
		state := stateGlyph(s.State)
		switch {
		case len(s.Problems) > 0:
			state = `<span class=warn>⚠ ` + esc(strings.Join(s.Problems, "; ")) + `</span>`
		case !s.Enabled:
			state = `<span class=muted>disabled</span>`
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>\n",
			mark, s.ID, esc(s.Slug), esc(s.Name), esc(s.Domain), local, state, s.Requests)
	}
	b.WriteString("</table>\n")
	if len(idx.Sites) == 0 {
		b.WriteString("<p class=muted>No sites yet.</p>\n")
	}
	b.WriteString(`<p class=muted>On localhost, <code>?siteplex-site=SLUG</code> picks the site for this browser; <code>?siteplex-site=</code> clears it. JSON: <code>Accept: application/json</code>; status: <a href="/api/status">/api/status</a>.</p>
</body></html>
`)
	return b.String()
}
