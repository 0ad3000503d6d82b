package django

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	_ "embed"

	"github.com/siteplex/siteplex/internal/safefile"
)

//go:embed siteplex_runtime.py
var runtimeSource []byte

//go:embed siteplex_overlay.py.tmpl
var overlayTemplate string

// The overlay's module names: DJANGO_SETTINGS_MODULE names OverlayModule,
// which imports RuntimeModule.
const (
	OverlayModule = "siteplex_overlay"
	RuntimeModule = "siteplex_runtime"
)

// Headers and the path of the identity probe (docs/django.md).
const (
	// HeaderSecret carries the engine's secret (ProcessOverlay.Secret).
	// Without it a request can neither choose its site nor reach the
	// probe. The engine must drop it, and HeaderSite, from client requests.
	HeaderSecret = "X-Siteplex-Secret"
	// HeaderSite carries the django_site id a request is for, in single
	// mode (with HeaderSecret).
	HeaderSite = "X-Siteplex-Site"
	// HeaderProbe marks the probe's answers.
	HeaderProbe = "X-Siteplex-Probe"
	// ProbePath is the one path the probe answers, with HeaderSecret only.
	ProbePath = "/__siteplex__/identity/"
)

// Mode is how the overlay makes a process its site.
type Mode string

const (
	// PerSite: the process serves one site (ProcessOverlay.SiteID).
	PerSite Mode = "per-site"
	// Single: one process serves every site; each request's site comes
	// from HeaderSite.
	Single Mode = "single"
	// ProbeOnly: the overlay is off (overlay = false, --no-overlay): the
	// project's settings are used as they are; only the identity probe is
	// added, so siteplex can still say which site the process serves.
	ProbeOnly Mode = "probe"
)

// Overlay is a written overlay: its folder and what it knows of the
// project's settings.
type Overlay struct {
	// Dir is the folder holding siteplex_overlay.py and siteplex_runtime.py;
	// ProcessEnv puts it first on PYTHONPATH.
	Dir string
	// SettingsModule is the project's own settings module.
	SettingsModule string
	// SiteIDEnvVar is the variable SITE_ID follows in the project's
	// settings ("" when it follows none): ProcessEnv sets it too, so
	// settings derived from it at import agree.
	SiteIDEnvVar string
	// Mezzanine is true when Mezzanine is installed: ProcessEnv then sets
	// MEZZANINE_SITE_ID.
	Mezzanine bool
}

// File is the path of the overlay settings module.
func (o *Overlay) File() string { return filepath.Join(o.Dir, OverlayModule+".py") }

var moduleRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// Write writes the overlay into dir (normally .siteplex/overlay, see
// Project.OverlayDir in package sites) for the project info describes: the
// settings module and the runtime. Files whose content is unchanged are not
// rewritten (a running dev server's autoreloader watches them). The
// folder's parent is created like MakeStateDir does.
func Write(dir string, info *Info) (*Overlay, error) {
	if info == nil || info.SettingsModule == "" {
		return nil, errors.New("overlay: the project's settings module is unknown")
	}
	if !moduleRe.MatchString(info.SettingsModule) {
		return nil, fmt.Errorf("overlay: %q is not a Python module name", info.SettingsModule)
	}
	if err := MakeStateDir(filepath.Dir(dir)); err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	o := &Overlay{Dir: dir, SettingsModule: info.SettingsModule, Mezzanine: info.Frameworks.Mezzanine}
	if info.SiteID.Kind == KindEnv {
		o.SiteIDEnvVar = info.SiteID.EnvVar
	}
	module := strings.ReplaceAll(overlayTemplate, "{{MODULE}}", info.SettingsModule)
	for name, content := range map[string][]byte{OverlayModule + ".py": []byte(module), RuntimeModule + ".py": runtimeSource} {
		p := filepath.Join(dir, name)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, content) {
			continue
		}
		if err := safefile.Replace(p, content, 0o644, false, nil); err != nil {
			return nil, fmt.Errorf("overlay: %w", err)
		}
	}
	return o, nil
}

// ProcessOverlay is what one process needs from the overlay.
type ProcessOverlay struct {
	Mode Mode
	// SiteID is a django_site id: in PerSite mode the process's site, in
	// Single mode the site of requests that carry no HeaderSite (the forced
	// site), 0 for none. It is 0 as well when the process's site is not a
	// django_site row (a Wagtail site, a tenant): SITE_ID is then left as
	// the project has it.
	SiteID int64
	// AllowedHosts are the names routed to this process (local domain,
	// domain, aliases, localhost when forced): added to ALLOWED_HOSTS.
	AllowedHosts []string
	// CanonicalHosts are the names the engine sends upstream instead of the
	// browser's (Host rewriting): added to ALLOWED_HOSTS too.
	CanonicalHosts []string
	// Secret is the engine's secret (NewSecret): the process gives the probe
	// and the per-request site only to requests carrying it in HeaderSecret.
	Secret string
	// PythonPath is the PYTHONPATH the process would have without the
	// overlay ("" for none): the overlay's folder goes before it.
	PythonPath string
	// Key names this process's hosts file when the names are too many for
	// the environment: the site's slug, or "single".
	Key string
}

// maxEnvHosts is the most bytes of names passed in the environment; more
// go into a file (Linux caps one variable at 128 KiB, and the whole
// environment shares the argument space).
const maxEnvHosts = 8 << 10

// ProcessEnv returns the environment additions (KEY=VALUE) that make a
// process load the overlay: PYTHONPATH with the overlay's folder first,
// DJANGO_SETTINGS_MODULE, the SITEPLEX_* variables the runtime reads, and,
// in PerSite mode, MEZZANINE_SITE_ID (Mezzanine) and the variable the
// project's SITE_ID follows. The caller applies them last, over the env
// file's values. When the names are more than fit in a variable, it writes
// them to a 0600 JSON file in the overlay folder, named by
// SITEPLEX_HOSTS_FILE.
func (o *Overlay) ProcessEnv(p ProcessOverlay) ([]string, error) {
	switch p.Mode {
	case PerSite, Single, ProbeOnly:
	default:
		return nil, fmt.Errorf("overlay: unknown mode %q", p.Mode)
	}
	if p.Secret == "" {
		return nil, errors.New("overlay: no secret: the probe and the per-request site need one (NewSecret)")
	}
	pp := o.Dir
	if p.PythonPath != "" {
		pp += string(os.PathListSeparator) + p.PythonPath
	}
	env := []string{
		"PYTHONPATH=" + pp,
		"DJANGO_SETTINGS_MODULE=" + OverlayModule,
		"SITEPLEX_PROJECT_SETTINGS=" + o.SettingsModule,
		"SITEPLEX_OVERLAY=" + string(p.Mode),
		"SITEPLEX_SECRET=" + p.Secret,
	}
	if p.SiteID > 0 {
		id := strconv.FormatInt(p.SiteID, 10)
		env = append(env, "SITEPLEX_SITE_ID="+id)
		if p.Mode == PerSite {
			if o.Mezzanine {
				env = append(env, "MEZZANINE_SITE_ID="+id)
			}
			if o.SiteIDEnvVar != "" {
				env = append(env, o.SiteIDEnvVar+"="+id)
			}
		}
	}
	if p.Mode == ProbeOnly {
		return env, nil
	}
	allowed, canonical := strings.Join(p.AllowedHosts, ","), strings.Join(p.CanonicalHosts, ",")
	if len(allowed)+len(canonical) <= maxEnvHosts {
		if allowed != "" {
			env = append(env, "SITEPLEX_ALLOWED_HOSTS="+allowed)
		}
		if canonical != "" {
			env = append(env, "SITEPLEX_CANONICAL_HOSTS="+canonical)
		}
		return env, nil
	}
	key := p.Key
	if key == "" || strings.ContainsAny(key, `/\`) || strings.HasPrefix(key, ".") {
		key = "process"
	}
	b, err := json.Marshal(map[string][]string{"allowed_hosts": p.AllowedHosts, "canonical_hosts": p.CanonicalHosts})
	if err != nil {
		return nil, err
	}
	path := filepath.Join(o.Dir, "hosts-"+key+".json")
	if err := safefile.Replace(path, b, 0o600, false, nil); err != nil {
		return nil, fmt.Errorf("overlay: writing the names for %s: %w", key, err)
	}
	return append(env, "SITEPLEX_HOSTS_FILE="+path), nil
}

// NewSecret returns a random secret for ProcessOverlay.Secret: one per
// engine, never shown.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
