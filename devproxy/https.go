package devproxy

// HTTPS: the engine's TLS listeners, the names they issue certificates
// for, the optional redirect from plain HTTP, and the addresses links on
// siteplex's own pages use. What it does is written down in
// docs/https.md ("Serving HTTPS").

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/siteplex/siteplex/internal/tlsca"
)

// HTTPSConfig turns on the engine's HTTPS listeners (Config.HTTPS).
type HTTPSConfig struct {
	// CA signs the leaf certificates, issued at the handshake for the
	// names the engine routes. Required.
	CA *tlsca.CA
	// Owner receives the leaf cache files (nil: the process).
	Owner *tlsca.Owner
	// Listen are the TLS addresses; empty means DefaultHTTPS, where an
	// IPv6 loopback the machine lacks is skipped and a refused bind names
	// --https off among the ways out.
	Listen []string
	// Redirect answers plain-HTTP requests for a site's names with a
	// redirect to https (the index, the API and loopback names stay on
	// plain HTTP).
	Redirect bool
}

// DefaultHTTPS are the TLS addresses the engine binds when HTTPS is on
// and no address is given.
func DefaultHTTPS() []string { return []string{"127.0.0.1:443", "[::1]:443"} }

// tlsState is the engine's HTTPS part; nil on an engine without HTTPS.
type tlsState struct {
	conf *tls.Config
	ca   *tlsca.CA
	// reported holds the routed names already reported as outside the
	// CA's constraints (one event per name).
	reported sync.Map
}

// newTLSState makes the issuer whose Allowed predicate is the engine's
// live routing table.
func (e *Engine) newTLSState(h *HTTPSConfig) (*tlsState, error) {
	if h.CA == nil {
		return nil, errors.New("HTTPS needs the local CA")
	}
	ts := &tlsState{ca: h.CA}
	iss, err := tlsca.NewIssuer(h.CA, tlsca.IssuerOptions{
		Allowed: e.routes,
		Owner:   h.Owner,
		Refused: func(re *tlsca.RefusedError) {
			// An unknown name is anyone's probe and says nothing to the
			// user; a routed name the CA may not sign needs their action.
			if re.Name == "" || !e.routes(re.Name) {
				return
			}
			if _, seen := ts.reported.LoadOrStore(re.Name, true); !seen {
				e.emit(Event{Kind: EventError, Err: fmt.Errorf("https: %w", re)})
			}
		},
		Warn: func(err error) { e.emit(Event{Kind: EventError, Err: err}) },
	})
	if err != nil {
		return nil, err
	}
	ts.conf = iss.TLSConfig()
	return ts, nil
}

// routes reports whether the engine routes name (lower case, no port, no
// final dot; an IP address in canonical form): the Allowed predicate of
// the certificate issuer, asked at every handshake. It reads the live
// routing table and allocates nothing.
func (e *Engine) routes(name string) bool { return e.table.Load().routes(name) }

// routes reports whether a request for name would reach a site, the
// index or a loopback name (anything but toForeign).
func (t *routeTable) routes(name string) bool {
	if isLocalName(name) {
		return true // "::1" has no brackets here, unlike a Host header
	}
	// The issuer asks in canonical form only: no port, no final dot.
	if name == "" || name[len(name)-1] == '.' || strings.IndexByte(name, ':') >= 0 {
		return false
	}
	kind, _ := t.lookup(name)
	return kind != toForeign
}

// httpsListen is the addresses to bind for HTTPS and whether they are the
// defaults; none when HTTPS is off.
func (e *Engine) httpsListen() (addrs []string, byDefault bool) {
	h := e.cfg.HTTPS
	if h == nil {
		return nil, false
	}
	if len(h.Listen) == 0 {
		return DefaultHTTPS(), true
	}
	return h.Listen, false
}

// HTTPSAddrs returns the bound HTTPS addresses with their real ports
// (none when HTTPS is off).
func (e *Engine) HTTPSAddrs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string{}, e.httpsAddrs...)
}

// permits reports whether the engine serves host over HTTPS: HTTPS is on
// and the CA may sign the name.
func (e *Engine) permits(host string) bool {
	return e.tls != nil && e.tls.ca.Permits(strings.ToLower(host))
}

// redirectHTTPS answers a plain-HTTP request for a site's name with a
// redirect to the same URL over https, when --https-redirect is on and
// the name can be served over HTTPS. It reports whether it answered.
// GET and HEAD get 302, other methods 307 (which keeps the method and
// body): both temporary, so that a browser forgets them once the option
// is off (docs/https.md, "Redirect").
func (e *Engine) redirectHTTPS(w http.ResponseWriter, r *http.Request) bool {
	if e.tls == nil || !e.cfg.HTTPS.Redirect {
		return false
	}
	var buf [256]byte
	host, ok := normHost(r.Host, &buf)
	if !ok || !e.permits(host) {
		return false
	}
	e.mu.Lock()
	port := ""
	if len(e.httpsAddrs) > 0 {
		port = portOf(e.httpsAddrs[0])
	}
	e.mu.Unlock()
	if port == "" {
		return false
	}
	code := http.StatusTemporaryRedirect
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		code = http.StatusFound
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, baseURL(true, host, port)+r.URL.RequestURI(), code)
	return true
}

// linkBase is "scheme://host[:port]" for a link to host on a page that
// answers r: https when the engine serves host over HTTPS, else http;
// the port this client reached when the scheme is the request's own,
// else the engine's first address of that scheme.
func (e *Engine) linkBase(r *http.Request, host string) string {
	secure := e.permits(host)
	port := ""
	if secure == (r.TLS != nil) {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			port = portOf(a.String())
		}
	}
	if port == "" {
		e.mu.Lock()
		addrs := e.addrs
		if secure {
			addrs = e.httpsAddrs
		}
		if len(addrs) > 0 {
			port = portOf(addrs[0])
		}
		e.mu.Unlock()
	}
	return baseURL(secure, host, port)
}

// indexURL is the index page's address as a client of r reaches it.
func (e *Engine) indexURL(r *http.Request) string { return e.linkBase(r, IndexHost) + "/" }

// SiteURL is the address of host through an engine listening on listen
// (plain HTTP) and https (TLS), as its Status reports them: https on the
// first TLS address's port when there is one and permits(host) (the CA
// may sign the name; nil permits every name), else http on the first
// plain address's port. Default ports (80, 443) are left out. "" when
// there is no address to use.
func SiteURL(host string, listen, https []string, permits func(string) bool) string {
	if host == "" {
		return ""
	}
	if len(https) > 0 && (permits == nil || permits(strings.ToLower(host))) {
		return baseURL(true, host, portOf(https[0])) + "/"
	}
	if len(listen) == 0 {
		return ""
	}
	return baseURL(false, host, portOf(listen[0])) + "/"
}

// baseURL is scheme://host[:port], the port left out when it is the
// scheme's default (or unknown).
func baseURL(secure bool, host, port string) string {
	scheme, def := "http", "80"
	if secure {
		scheme, def = "https", "443"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || port == def {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}

// portOf is the port of a host:port address ("" when it has none).
func portOf(addr string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		return p
	}
	return ""
}
