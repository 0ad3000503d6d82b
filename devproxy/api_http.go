package devproxy

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/siteplex/siteplex/sites"
)

// useRequest is the body of POST /api/use: a site id, or a site key (id,
// slug or domain); both empty or 0 clears the forced site.
type useRequest struct {
	SiteID int64  `json:"site_id"`
	Site   string `json:"site,omitempty"`
}

// apiError is the JSON body of a failed API call.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func apiFail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, apiError{Error: fmt.Sprintf(format, args...)})
}

// authorized reports whether r carries "Authorization: Bearer <token>".
func (e *Engine) authorized(r *http.Request) bool {
	const prefix = "Bearer "
	a := r.Header.Get("Authorization")
	if len(a) <= len(prefix) || !strings.EqualFold(a[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(a[len(prefix):])), []byte(e.token)) == 1
}

// serveAPI is the control API (docs/engine.md, "Control API and
// .siteplex/engine.json"). It is reached only for siteplex.localhost and
// the loopback names (see isIndexName): GET /api/status for anyone there;
// everything else with the bearer token of engine.json.
func (e *Engine) serveAPI(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if path == "/api/status" {
		if !read {
			w.Header().Set("Allow", "GET, HEAD")
			apiFail(w, http.StatusMethodNotAllowed, "use GET for %s", path)
			return
		}
		writeJSON(w, http.StatusOK, e.Status())
		return
	}
	reads := path == "/api/events" || path == "/api/sites" || path == "/api/requests" ||
		strings.HasPrefix(path, "/api/sites/") && strings.HasSuffix(path, "/logs")
	switch {
	case reads && !read:
		w.Header().Set("Allow", "GET")
		apiFail(w, http.StatusMethodNotAllowed, "use GET for %s", path)
		return
	case !reads && r.Method != http.MethodPost:
		w.Header().Set("Allow", "POST")
		apiFail(w, http.StatusMethodNotAllowed, "use POST for %s", path)
		return
	}
	if !e.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="siteplex"`)
		apiFail(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <token from .siteplex/engine.json>")
		return
	}
	if reads {
		e.serveAPIRead(w, r, path)
		return
	}
	ctx := r.Context()
	switch {
	case path == "/api/use":
		var req useRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			apiFail(w, http.StatusBadRequest, "reading body: %v", err)
			return
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				apiFail(w, http.StatusBadRequest, `body must be JSON {"site_id": N} or {"site": "slug"}: %v`, err)
				return
			}
		}
		id := req.SiteID
		if req.Site != "" {
			s, err := e.findSite(req.Site)
			if err != nil {
				apiFail(w, http.StatusNotFound, "%v", err)
				return
			}
			id = s.ID
		}
		if err := e.Use(ctx, id); err != nil {
			apiFail(w, apiCode(err), "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "forced_site_id": id})
	case path == "/api/reload":
		if err := e.Reload(ctx); err != nil {
			apiFail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "sites": len(e.Sites())})
	case strings.HasPrefix(path, "/api/sites/"):
		slug, action, ok := strings.Cut(strings.TrimPrefix(path, "/api/sites/"), "/")
		if !ok || slug == "" {
			apiFail(w, http.StatusNotFound, "use /api/sites/<slug>/start|stop|restart|probe")
			return
		}
		var err error
		switch action {
		case "probe":
			id, err := e.ProbeSite(ctx, slug)
			if err != nil {
				apiFail(w, http.StatusConflict, "%v", err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"ok": true, "identity": id})
			return
		case "start":
			err = e.StartSite(ctx, slug)
		case "stop":
			err = e.StopSite(ctx, slug)
		case "restart":
			err = e.RestartSite(ctx, slug)
		default:
			apiFail(w, http.StatusNotFound, "unknown action %q: use start, stop, restart or probe", action)
			return
		}
		if err != nil {
			apiFail(w, apiCode(err), "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	default:
		apiFail(w, http.StatusNotFound, "no API endpoint %s", path)
	}
}

// serveAPIRead answers the token-guarded reads: the event stream, the
// sites, the request records and a site's log lines.
func (e *Engine) serveAPIRead(w http.ResponseWriter, r *http.Request, path string) {
	n := 0
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			apiFail(w, http.StatusBadRequest, "n=%q is not a whole number ≥ 0", v)
			return
		}
	}
	switch {
	case path == "/api/events":
		e.serveEvents(w, r)
	case path == "/api/sites":
		list := e.Sites()
		out := make([]wireSite, len(list))
		for i := range list {
			out[i] = wireSite{Site: list[i], CanonicalAlias: list[i].CanonicalAlias}
		}
		writeJSON(w, http.StatusOK, out)
	case path == "/api/requests":
		writeJSON(w, http.StatusOK, e.Requests(n))
	default: // /api/sites/<slug>/logs
		slug := strings.TrimSuffix(strings.TrimPrefix(path, "/api/sites/"), "/logs")
		if _, err := e.findSite(slug); err != nil && slug != SingleSlug && slug != PreloadLog {
			apiFail(w, http.StatusNotFound, "%v", err)
			return
		}
		lines := e.Logs(slug, n)
		if lines == nil {
			lines = []LogLine{}
		}
		writeJSON(w, http.StatusOK, lines)
	}
}

// wireSite is a site in GET /api/sites: its JSON form plus what the UI
// needs that `siteplex sites --json` does not show.
type wireSite struct {
	sites.Site
	CanonicalAlias string `json:"canonical_alias,omitempty"`
}

// wireEvent is one line of the event stream (GET /api/events).
type wireEvent struct {
	Kind    string         `json:"kind"`
	Site    *SiteStatus    `json:"site,omitempty"`
	Log     *LogLine       `json:"log,omitempty"`
	Request *RequestRecord `json:"request,omitempty"`
	Error   string         `json:"error,omitempty"`
}

func toWire(ev Event) wireEvent {
	we := wireEvent{Kind: ev.Kind.String()}
	switch ev.Kind {
	case EventState:
		we.Site = &ev.Site
	case EventLog:
		we.Log = &ev.Log
	case EventRequest:
		we.Request = &ev.Request
	case EventError:
		if ev.Err != nil {
			we.Error = ev.Err.Error()
		}
	case EventSites:
	}
	return we
}

func fromWire(we wireEvent) (Event, bool) {
	var ev Event
	for k, name := range eventKindNames {
		if name == we.Kind {
			ev.Kind = EventKind(k)
			switch ev.Kind {
			case EventState:
				if we.Site != nil {
					ev.Site = *we.Site
				}
			case EventLog:
				if we.Log != nil {
					ev.Log = *we.Log
				}
			case EventRequest:
				if we.Request != nil {
					ev.Request = *we.Request
				}
			case EventError:
				ev.Err = errors.New(we.Error)
			case EventSites:
			}
			return ev, true
		}
	}
	return ev, false
}

// serveEvents streams the engine's events as JSON lines
// (application/x-ndjson), flushed as they come, until the client leaves
// or the engine closes. ?kinds=state,log,request,sites,error picks kinds
// (default all). A client that does not keep up loses events, as any
// subscriber does.
func (e *Engine) serveEvents(w http.ResponseWriter, r *http.Request) {
	var kinds []EventKind
	if v := r.URL.Query().Get("kinds"); v != "" {
		for name := range strings.SplitSeq(v, ",") {
			ev, ok := fromWire(wireEvent{Kind: strings.TrimSpace(name)})
			if !ok {
				apiFail(w, http.StatusBadRequest, "unknown event kind %q: use state, log, request, sites or error", name)
				return
			}
			kinds = append(kinds, ev.Kind)
		}
	}
	ch, cancel := e.Subscribe(kinds...)
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-e.closing:
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if enc.Encode(toWire(ev)) != nil {
				return
			}
			// Send what is queued with it in the same write.
			for more := true; more; {
				select {
				case ev, ok := <-ch:
					if !ok || enc.Encode(toWire(ev)) != nil {
						return
					}
				default:
					more = false
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// apiCode maps an engine error to an HTTP status.
func apiCode(err error) int {
	var ue *sites.UsageError
	if errors.As(err, &ue) {
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}
