// Package demosite is siteplex's tiny built-in site server (`siteplex
// demo-site`): it stands in for a Django dev server in the demo, the Docker
// tests and the proxy tests. It answers with its SITE_ID, site and the
// request's Host and X-Forwarded-* headers, echoes uploads, streams slowly
// on request and echoes WebSocket messages.
package demosite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/websocket"
)

// Options say who the server is.
type Options struct {
	// SiteID is the SITE_ID it reports ("" when not set).
	SiteID string
	// Site is the site's slug or name.
	Site string
}

// WhoAmI is the JSON answer of GET /whoami.
type WhoAmI struct {
	SiteID          string `json:"site_id"`
	Site            string `json:"site"`
	Host            string `json:"host"`
	XForwardedFor   string `json:"x_forwarded_for"`
	XForwardedProto string `json:"x_forwarded_proto"`
	XForwardedHost  string `json:"x_forwarded_host"`
	Method          string `json:"method"`
	Path            string `json:"path"`
	PID             int    `json:"pid"`
}

// Upload is the JSON answer of POST /upload.
type Upload struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Handler serves the demo site:
//
//	GET  /          a small HTML page naming the site
//	GET  /whoami    WhoAmI as JSON
//	GET  /plain     a short text answer (for benchmarks)
//	POST /upload    reads the whole body, answers Upload
//	GET  /stream    ?chunks=N&interval=DURATION&size=BYTES: a slow chunked answer
//	GET  /ws        a WebSocket echo
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	who := func(r *http.Request) WhoAmI {
		return WhoAmI{SiteID: o.SiteID, Site: o.Site, Host: r.Host,
			XForwardedFor: r.Header.Get("X-Forwarded-For"), XForwardedProto: r.Header.Get("X-Forwarded-Proto"),
			XForwardedHost: r.Header.Get("X-Forwarded-Host"), Method: r.Method, Path: r.URL.Path, PID: os.Getpid()}
	}
	plain := []byte("hello from " + o.Site + " (SITE_ID " + o.SiteID + ")\n")
	mux.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(plain)))
		_, _ = w.Write(plain)
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(who(r))
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, "reading upload: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Upload{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		chunks, _ := strconv.Atoi(q.Get("chunks"))
		if chunks <= 0 {
			chunks = 10
		}
		size, _ := strconv.Atoi(q.Get("size"))
		if size <= 0 {
			size = 16
		}
		interval, err := time.ParseDuration(q.Get("interval"))
		if err != nil {
			interval = 100 * time.Millisecond
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		rc := http.NewResponseController(w)
		line := make([]byte, size)
		for i := range chunks {
			for j := range line {
				line[j] = 'a' + byte(i%26)
			}
			line[len(line)-1] = '\n'
			if _, err := w.Write(line); err != nil {
				return
			}
			_ = rc.Flush()
			if i < chunks-1 {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(interval):
				}
			}
		}
	})
	// websocket.Server with a nil Handshake accepts any Origin: the proxy
	// in front decides who gets here.
	mux.Handle("/ws", websocket.Server{Handler: func(c *websocket.Conn) {
		_, _ = io.Copy(c, c)
	}})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		wi := who(r)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><meta charset=utf-8><title>%[1]s</title>
<h1>%[1]s</h1><p>SITE_ID <b>%[2]s</b> · Host <code>%[3]s</code> · X-Forwarded-For <code>%[4]s</code> · pid %[5]d</p>
<p>This is siteplex's built-in demo site. Try <a href="/whoami">/whoami</a>.</p>
`, html.EscapeString(o.Site), html.EscapeString(o.SiteID), html.EscapeString(wi.Host), html.EscapeString(wi.XForwardedFor), wi.PID)
	})
	return mux
}

// Run serves the demo site on addr until ctx ends, then shuts down
// gracefully. ready, when not nil, is called with the bound address.
func Run(ctx context.Context, addr string, o Options, ready func(addr string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("demo-site: %w", err)
	}
	srv := &http.Server{Handler: Handler(o), ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("demo-site: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("demo-site: %w", err)
	}
	return nil
}
