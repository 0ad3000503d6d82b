package devproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
	"github.com/siteplex/siteplex/sites/django"
)

// EngineFileName is the file a running engine writes in the project's
// .siteplex folder (docs/engine.md, "Control API and
// .siteplex/engine.json").
const EngineFileName = "engine.json"

// EngineFile is .siteplex/engine.json: how other siteplex commands reach a
// running engine.
type EngineFile struct {
	PID    int      `json:"pid"`
	Listen []string `json:"listen"`
	// HTTPS are the HTTPS addresses (none when HTTPS is off); the
	// control API is reached over Listen.
	HTTPS []string `json:"https,omitempty"`
	Token string   `json:"token"`
	// StartTicks is the engine process's start time (clock ticks since
	// boot; 0 where unknown): a pid reused by another process does not
	// pass for the engine.
	StartTicks uint64 `json:"start_ticks,omitempty"`
	// Kind is what runs the engine: KindServe, KindUI ("" when the
	// writer did not say, as before this field).
	Kind string `json:"kind,omitempty"`
}

// What runs an engine (EngineFile.Kind, Config.Kind).
const (
	// KindServe is `siteplex serve`.
	KindServe = "serve"
	// KindUI is the terminal UI (`siteplex`, `siteplex ui`, the demo).
	KindUI = "ui"
)

// Describe names the process that runs the engine, for people: "siteplex
// serve (pid 4242)", "the siteplex UI (pid 4242)", "siteplex (pid 4242)".
func (ef *EngineFile) Describe() string {
	switch ef.Kind {
	case KindServe:
		return fmt.Sprintf("siteplex serve (pid %d)", ef.PID)
	case KindUI:
		return fmt.Sprintf("the siteplex UI (pid %d)", ef.PID)
	}
	return fmt.Sprintf("siteplex (pid %d)", ef.PID)
}

// ErrNoEngine means no engine is running for the project (no engine.json,
// or one left by a process that is gone).
var ErrNoEngine = errors.New("no siteplex engine is running for this project")

// RunningError says another engine runs for the project: the one Engine
// names (its pid and addresses), whose engine.json is in Dir.
type RunningError struct {
	Engine EngineFile
	Dir    string
}

func (e *RunningError) Error() string {
	ef := e.Engine
	return fmt.Sprintf("%s already runs this project's engine (listening on %s): stop it first, or run 'siteplex' in another terminal to use it",
		ef.Describe(), strings.Join(ef.Listen, ", "))
}

// writeEngineFile creates engine.json (mode 0600) if no live engine holds
// it: the complete file is linked into place, which fails when one exists
// (then a file of a live engine is a *RunningError, a stale one is
// replaced).
func (e *Engine) writeEngineFile() error {
	dir := e.stateDir()
	if dir == "" {
		return nil
	}
	// .siteplex gets its .gitignore when siteplex creates it.
	if err := django.MakeStateDir(dir); err != nil {
		return fmt.Errorf("writing %s: %w", EngineFileName, err)
	}
	ef := EngineFile{PID: os.Getpid(), Listen: e.Addrs(), HTTPS: e.HTTPSAddrs(), Token: e.token, StartTicks: proc.Start(os.Getpid()), Kind: e.cfg.Kind}
	b, err := json.MarshalIndent(ef, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".engine-*.json")
	if err != nil {
		return fmt.Errorf("writing %s: %w", EngineFileName, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", EngineFileName, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", EngineFileName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", EngineFileName, err)
	}
	p := filepath.Join(dir, EngineFileName)
	for range 3 {
		err := os.Link(tmp.Name(), p)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("writing %s: %w", EngineFileName, err)
		}
		other, rerr := ReadEngineFile(dir)
		switch {
		case rerr == nil:
			return &RunningError{Engine: *other, Dir: dir}
		case errors.Is(rerr, ErrNoEngine):
			// Left by an engine that is gone.
			_ = os.Remove(p)
		default:
			return rerr
		}
	}
	return fmt.Errorf("writing %s: it keeps coming back; is another siteplex starting?", EngineFileName)
}

// removeEngineFile removes engine.json if it is still this engine's.
func (e *Engine) removeEngineFile() {
	dir := e.stateDir()
	if dir == "" {
		return
	}
	p := filepath.Join(dir, EngineFileName)
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	var ef EngineFile
	if json.Unmarshal(b, &ef) == nil && ef.Token != e.token {
		return // another engine wrote it since
	}
	_ = os.Remove(p)
}

// ReadEngineFile reads stateDir/engine.json. It returns ErrNoEngine when
// there is none or when the process that wrote it is gone (or its pid now
// belongs to another process).
func ReadEngineFile(stateDir string) (*EngineFile, error) {
	p := filepath.Join(stateDir, EngineFileName)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoEngine
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	var ef EngineFile
	if err := json.Unmarshal(b, &ef); err != nil {
		return nil, fmt.Errorf("reading %s: %w (delete it if no siteplex is running)", p, err)
	}
	if ef.PID <= 0 || len(ef.Listen) == 0 {
		return nil, fmt.Errorf("reading %s: no pid or listen address (delete it if no siteplex is running)", p)
	}
	if ef.StartTicks != 0 && !proc.Same(ef.PID, ef.StartTicks) || !proc.Alive(ef.PID) {
		return nil, ErrNoEngine
	}
	return &ef, nil
}

// Client talks to a running engine's control API.
type Client struct {
	ef   EngineFile
	base string
	hc   *http.Client
	// long is hc without its timeout, for the event stream.
	long *http.Client
}

// NewClient returns a client for the engine ef describes. It connects to
// the first listen address (a wildcard address is reached over loopback)
// and sends Host siteplex.localhost.
func NewClient(ef *EngineFile) *Client {
	addr := ef.Listen[0]
	if host, port, err := net.SplitHostPort(addr); err == nil {
		switch host {
		case "", "0.0.0.0":
			addr = net.JoinHostPort("127.0.0.1", port)
		case "::":
			addr = net.JoinHostPort("::1", port)
		}
	}
	tr := &http.Transport{Proxy: nil}
	return &Client{ef: *ef, base: "http://" + addr,
		hc: &http.Client{Timeout: 90 * time.Second, Transport: tr}, long: &http.Client{Transport: tr}}
}

// do sends one API call and decodes a JSON answer into out (may be nil).
func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Host = IndexHost
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.ef.Token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the siteplex engine (pid %d) at %s: %w", c.ef.PID, c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("reading the engine's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var ae apiError
		if json.Unmarshal(b, &ae) == nil && ae.Error != "" {
			return fmt.Errorf("siteplex engine: %s", ae.Error)
		}
		return fmt.Errorf("siteplex engine: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding the engine's answer: %w", err)
		}
	}
	return nil
}

// stream opens a long-lived GET (the event stream) and returns the
// answer, whose body the caller reads and closes.
func (c *Client) openStream(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Host = IndexHost
	req.Header.Set("Authorization", "Bearer "+c.ef.Token)
	resp, err := c.long.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the siteplex engine (pid %d) at %s: %w", c.ef.PID, c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, fmt.Errorf("siteplex engine: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// Status returns the engine's status (GET /api/status).
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/api/status", nil, &st)
	return st, err
}

// Use makes siteID the engine's forced site; 0 clears it.
func (c *Client) Use(ctx context.Context, siteID int64) error {
	return c.do(ctx, http.MethodPost, "/api/use", useRequest{SiteID: siteID}, nil)
}

// Reload makes the engine re-read the sites.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/api/reload", nil, nil)
}

// SiteAction starts, stops or restarts a site's process (action is
// "start", "stop" or "restart").
func (c *Client) SiteAction(ctx context.Context, slug, action string) error {
	return c.do(ctx, http.MethodPost, "/api/sites/"+url.PathEscape(slug)+"/"+action, nil, nil)
}
