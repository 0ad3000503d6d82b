package devproxy

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/siteplex/siteplex/sites"
)

// apiHostAllowed is the DNS-rebinding guard: the API answers only when the
// Host is siteplex.localhost, localhost or a loopback address (a page on
// evil.example that rebinds its name to 127.0.0.1 still sends its own Host).
func apiHostAllowed(host string) bool {
	var buf [256]byte
	h, ok := normHost(host, &buf)
	if !ok {
		return false
	}
	if h == IndexHost || h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// UseRequest is the body of POST /api/use: a site id, or a site key (id,
// slug or domain); both empty or 0 clears the forced site.
type UseRequest struct {
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

// serveAPI is the control API (SPEC §6.4, §6.5): GET /api/status for
// anyone on an allowed Host; POST /api/use, /api/reload and
// /api/sites/<slug>/start|stop|restart with the bearer token.
func (e *Engine) serveAPI(w http.ResponseWriter, r *http.Request) {
	if !apiHostAllowed(r.Host) {
		apiFail(w, http.StatusForbidden, "the siteplex API answers only for Host %s, localhost or a loopback address", IndexHost)
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "/api/status" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			apiFail(w, http.StatusMethodNotAllowed, "use GET for %s", path)
			return
		}
		writeJSON(w, http.StatusOK, e.Status())
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		apiFail(w, http.StatusMethodNotAllowed, "use POST for %s", path)
		return
	}
	if !e.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="siteplex"`)
		apiFail(w, http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer <token from .siteplex/engine.json>")
		return
	}
	ctx := r.Context()
	switch {
	case path == "/api/use":
		var req UseRequest
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
		rest := strings.TrimPrefix(path, "/api/sites/")
		slug, action, ok := strings.Cut(rest, "/")
		if !ok || slug == "" {
			apiFail(w, http.StatusNotFound, "use /api/sites/<slug>/start|stop|restart")
			return
		}
		var err error
		switch action {
		case "start":
			err = e.StartSite(ctx, slug)
		case "stop":
			err = e.StopSite(ctx, slug)
		case "restart":
			err = e.RestartSite(ctx, slug)
		default:
			apiFail(w, http.StatusNotFound, "unknown action %q: use start, stop or restart", action)
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

// apiCode maps an engine error to an HTTP status.
func apiCode(err error) int {
	var ue *sites.UsageError
	if errors.As(err, &ue) {
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}
