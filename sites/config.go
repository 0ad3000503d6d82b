package sites

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is siteplex.toml. Every CLI flag has a key here; flags win over
// the config, the config wins over the env file.
type Config struct {
	Name         string `toml:"name"`
	Database     string `toml:"database"`
	EnvFile      string `toml:"env_file"`
	DomainFormat string `toml:"domain_format"`
	HostsFile    string `toml:"hosts_file"`
	Names        string `toml:"names"`
	// Python is the interpreter for introspection and the default command
	// (relative to the project root; a bare name is looked up on PATH).
	Python string `toml:"python"`
	// Overlay false turns the overlay's changes off (docs/django.md); nil
	// means on.
	Overlay *bool `toml:"overlay"`
	// RewriteHost is auto, always or never: when the engine sends a site's
	// canonical host upstream for siteplex's local names (docs/engine.md,
	// "Host rewriting"); "" = auto.
	RewriteHost string `toml:"rewrite_host"`

	Listen      []string `toml:"listen"`
	Mode        string   `toml:"mode"`
	Start       string   `toml:"start"`
	BootTimeout string   `toml:"boot_timeout"`
	IdleTimeout string   `toml:"idle_timeout"`
	MaxRunning  *int     `toml:"max_running"`
	// Preload true forks per-site processes from a warm Django parent
	// (docs/preload.md); nil means off.
	Preload *bool `toml:"preload"`
	// HTTPS is `https = ["ADDR", …]` or `https = "off"`; HTTPSRedirect is
	// `https_redirect = true` (docs/https.md).
	HTTPS         HTTPSSetting `toml:"https"`
	HTTPSRedirect *bool        `toml:"https_redirect"`

	Process ProcessConfig         `toml:"process"`
	Sites   map[string]SiteConfig `toml:"sites"`

	// Path is the file the config was read from ("" when none).
	Path string `toml:"-"`
}

// HTTPSSetting is the https key of siteplex.toml: a list of addresses,
// or "off". The zero value means the key is absent.
type HTTPSSetting struct {
	Addrs []string
	Off   bool
}

// Set reports whether the key was given.
func (h HTTPSSetting) Set() bool { return h.Off || len(h.Addrs) > 0 }

// UnmarshalTOML reads "off" or an array of address strings.
func (h *HTTPSSetting) UnmarshalTOML(v any) error {
	const want = `use https = "off" or a list of addresses like ["127.0.0.1:443"]`
	switch x := v.(type) {
	case string:
		if strings.EqualFold(strings.TrimSpace(x), "off") {
			h.Off = true
			return nil
		}
		return fmt.Errorf("https = %q: %s", x, want)
	case []any:
		if len(x) == 0 {
			return fmt.Errorf("https = []: %s", want)
		}
		for _, a := range x {
			s, ok := a.(string)
			if !ok {
				return fmt.Errorf("https: %v is not a string: %s", a, want)
			}
			h.Addrs = append(h.Addrs, s)
		}
		return nil
	}
	return fmt.Errorf("https = %v: %s", v, want)
}

// ProcessConfig is the [process] table.
type ProcessConfig struct {
	Command []string          `toml:"command"`
	Runner  string            `toml:"runner"`
	Env     map[string]string `toml:"env"`
}

// SiteConfig is a [sites.<slug>] table.
type SiteConfig struct {
	ID      int64             `toml:"id"`
	Domain  string            `toml:"domain"`
	Name    string            `toml:"name"`
	Aliases []string          `toml:"aliases"`
	Env     map[string]string `toml:"env"`
	Command []string          `toml:"command"`
}

// ReadConfig reads a siteplex.toml. Unknown keys are a *UsageError naming
// them, so typos do not pass silently.
func ReadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Usagef("config file %s does not exist", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	var c Config
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		return nil, Usagef("config %s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, Usagef("config %s: unknown key %q", path, und[0].String())
	}
	c.Path = path
	return &c, nil
}
