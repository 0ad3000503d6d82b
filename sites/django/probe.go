package django

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Identity is the probe's answer: what the frameworks installed resolve for
// the probe's request (docs/django.md).
type Identity struct {
	// ReachedEnd is true when the request passed every middleware;
	// false when one answered first (Status is then its status).
	ReachedEnd bool `json:"reached_end"`
	Status     *int `json:"status"`
	// SettingsModule is DJANGO_SETTINGS_MODULE in the process.
	SettingsModule string `json:"settings_module"`
	Overlay        struct {
		Mode            string `json:"mode"`
		SiteID          *int64 `json:"site_id"`
		ProjectSettings string `json:"project_settings"`
	} `json:"overlay"`
	Host      string `json:"host"`
	HostError string `json:"host_error"`
	// SiteIDSetting is settings.SITE_ID for this request.
	SiteIDSetting struct {
		Kind  string `json:"kind"`
		Value *int64 `json:"value"`
		Class string `json:"class"`
	} `json:"site_id_setting"`
	// Sites is get_current_site(request) (django.contrib.sites).
	Sites *struct {
		ID     int64  `json:"id"`
		Domain string `json:"domain"`
	} `json:"sites"`
	// Multisite is django-multisite's SITE_ID after its middleware.
	Multisite *struct {
		SiteID int64 `json:"site_id"`
	} `json:"multisite"`
	// Mezzanine is mezzanine.utils.sites.current_site_id().
	Mezzanine *struct {
		SiteID int64 `json:"site_id"`
	} `json:"mezzanine"`
	// Wagtail is Site.find_for_request(request) (null when none).
	Wagtail *struct {
		ID       int64  `json:"id"`
		Hostname string `json:"hostname"`
		Port     int    `json:"port"`
		SiteName string `json:"site_name"`
	} `json:"wagtail"`
	// Tenant is request.tenant (django-tenants, django-pgschemas).
	Tenant *struct {
		SchemaName string `json:"schema_name"`
	} `json:"tenant"`
	Env struct {
		SiteID          *string `json:"SITE_ID"`
		MezzanineSiteID *string `json:"MEZZANINE_SITE_ID"`
	} `json:"env"`
	// Errors are the resolvers that raised, by name.
	Errors map[string]string `json:"errors"`
	// Stream is what the body of a streaming answer sees, computed while
	// the probe's own (streamed) answer is sent, after every middleware
	// returned; nil from a runtime that does not report it.
	Stream *StreamIdentity `json:"stream"`
}

// StreamIdentity is the site as a streaming answer's body sees it.
type StreamIdentity struct {
	// SiteID is int(settings.SITE_ID) (nil when it is not an int or
	// object).
	SiteID *int64 `json:"site_id"`
	// Sites is get_current_site(request).
	Sites *struct {
		ID     int64  `json:"id"`
		Domain string `json:"domain"`
	} `json:"sites"`
	Errors map[string]string `json:"errors"`
}

// NoProbeError is an answer that did not come from the probe: the process
// does not run the overlay (a custom command, manage.py setting
// DJANGO_SETTINGS_MODULE itself), or is not Django.
type NoProbeError struct{ Status int }

func (e *NoProbeError) Error() string {
	return fmt.Sprintf("the identity probe did not answer (HTTP %d from the project instead)", e.Status)
}

// NewProbeRequest builds the probe request to base (http://127.0.0.1:PORT)
// for the name form host; siteID > 0 adds HeaderSite (single mode).
func NewProbeRequest(ctx context.Context, base, host, secret string, siteID int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+ProbePath, nil)
	if err != nil {
		return nil, err
	}
	req.Host = host
	req.Header.Set(HeaderSecret, secret)
	if siteID > 0 {
		req.Header.Set(HeaderSite, strconv.FormatInt(siteID, 10))
	}
	return req, nil
}

// ParseProbe reads an answer to a probe request. An answer without
// HeaderProbe is a *NoProbeError.
func ParseProbe(status int, h http.Header, body []byte) (*Identity, error) {
	if h.Get(HeaderProbe) != "1" {
		return nil, &NoProbeError{Status: status}
	}
	var id Identity
	if err := json.Unmarshal(body, &id); err != nil {
		return nil, fmt.Errorf("the identity probe's answer is not JSON: %w", err)
	}
	return &id, nil
}

// Expect is what a process should serve for one name form.
type Expect struct {
	// Host is the name form probed ("gh.localhost", "localhost", ...).
	Host string
	// SiteID is the django_site id it must resolve to (0: not checked).
	SiteID int64
	// WagtailSiteID is the wagtailcore_site id (0: not checked).
	WagtailSiteID int64
	// Schema is the tenant's schema_name ("" : not checked).
	Schema string
	// Domain is the django_site domain of SiteID as siteplex read it
	// from its database ("": not compared). A different domain for the
	// same id in the process means it reads another database.
	Domain string
	// Database says which database siteplex reads and, when known,
	// which one Django's settings name, for that message ("" unknown).
	Database string
	// NoProbe is why the process may not run the overlay at all, when
	// siteplex knows it (manage.py assigns DJANGO_SETTINGS_MODULE); it
	// replaces the general reason of a missing probe.
	NoProbe string
}

// Verdict is the outcome of a probe: OK, or the loud reason.
type Verdict struct {
	OK bool
	// Message is "✓ site 3 (gh.localhost)" or "✗ serves site 1, expected
	// 3: …": one line, for status lines, pages and the API.
	Message string
}

func (v Verdict) String() string { return v.Message }

// CheckResponse is ParseProbe then Check; an answer that is not the
// probe's is a ✗ saying why it may not have come.
func CheckResponse(want Expect, status int, h http.Header, body []byte) Verdict {
	id, err := ParseProbe(status, h, body)
	var np *NoProbeError
	if errors.As(err, &np) {
		if want.NoProbe != "" {
			return bad("no identity probe on %s (HTTP %d): %s", want.Host, np.Status, want.NoProbe)
		}
		return bad("no identity probe on %s (HTTP %d): the process does not run siteplex's overlay (a custom command, or manage.py assigns DJANGO_SETTINGS_MODULE itself), so siteplex cannot tell which site it serves", want.Host, np.Status)
	}
	if err != nil {
		return bad("%s: %v", want.Host, err)
	}
	return Check(want, id)
}

func bad(format string, a ...any) Verdict {
	return Verdict{Message: "✗ " + fmt.Sprintf(format, a...)}
}

// Check compares the probe's answer with what the name form must serve,
// and says why when they differ.
func Check(want Expect, got *Identity) Verdict {
	if got.HostError != "" {
		why := got.HostError
		if strings.Contains(why, "ALLOWED_HOSTS") {
			why = "not in ALLOWED_HOSTS"
		}
		fix := "the overlay adds the routed names to ALLOWED_HOSTS: turn it on (remove overlay = false / --no-overlay)"
		if got.Overlay.Mode != string(ProbeOnly) {
			fix = "the engine did not pass this name to the overlay"
		}
		return bad("Django rejects Host %s (%s); %s", want.Host, why, fix)
	}
	if !got.ReachedEnd && got.Status != nil && *got.Status == http.StatusNotFound && got.Tenant == nil && want.Schema != "" {
		return bad("no tenant for Host %s (HTTP 404 from the tenant middleware)", want.Host)
	}
	if want.SiteID > 0 {
		if v, ok := checkSiteID(want, got); !ok {
			return v
		}
	}
	if want.WagtailSiteID > 0 {
		switch {
		case got.Wagtail == nil:
			return bad("Wagtail finds no site for Host %s, expected site %d", want.Host, want.WagtailSiteID)
		case got.Wagtail.ID != want.WagtailSiteID:
			return bad("Wagtail serves site %d (%s), expected %d, for Host %s", got.Wagtail.ID, got.Wagtail.Hostname, want.WagtailSiteID, want.Host)
		}
	}
	if want.Schema != "" {
		switch {
		case got.Tenant == nil:
			return bad("no tenant for Host %s, expected schema %s", want.Host, want.Schema)
		case got.Tenant.SchemaName != want.Schema:
			return bad("serves tenant %s, expected %s, for Host %s", got.Tenant.SchemaName, want.Schema, want.Host)
		}
	}
	what := want.Host
	switch {
	case want.SiteID > 0:
		what = fmt.Sprintf("site %d on %s", want.SiteID, want.Host)
	case want.WagtailSiteID > 0:
		what = fmt.Sprintf("Wagtail site %d on %s", want.WagtailSiteID, want.Host)
	case want.Schema != "":
		what = fmt.Sprintf("tenant %s on %s", want.Schema, want.Host)
	}
	return Verdict{OK: true, Message: "✓ " + what}
}

// checkSiteID checks every django_site resolver the probe reported.
func checkSiteID(want Expect, got *Identity) (Verdict, bool) {
	type resolver struct {
		name string
		id   int64
		ok   bool
	}
	var rs []resolver
	if got.Mezzanine != nil {
		rs = append(rs, resolver{"Mezzanine's current_site_id()", got.Mezzanine.SiteID, true})
	}
	if got.Multisite != nil {
		rs = append(rs, resolver{"django-multisite's SITE_ID", got.Multisite.SiteID, true})
	}
	if got.Sites != nil {
		rs = append(rs, resolver{"get_current_site(request)", got.Sites.ID, true})
	}
	if len(rs) == 0 {
		why := "django.contrib.sites resolved nothing"
		for k, v := range got.Errors {
			why = k + ": " + v
			break
		}
		return bad("cannot tell which site Host %s serves, expected %d: %s", want.Host, want.SiteID, why), false
	}
	for _, r := range rs {
		if r.id == want.SiteID {
			continue
		}
		return bad("serves site %d, expected %d, on %s: %s", r.id, want.SiteID, want.Host, reason(r.name, want, got)), false
	}
	if want.Domain != "" && got.Sites != nil && !sameDomain(got.Sites.Domain, want.Domain) {
		db := "siteplex probably reads another database than the project"
		if want.Database != "" {
			db += " (" + want.Database + ")"
		}
		return bad("site %d is %s in the project's database but %s in the one siteplex reads, on %s: %s; point siteplex at the project's database (--db, database in siteplex.toml, DATABASE_URL)",
			want.SiteID, got.Sites.Domain, want.Domain, want.Host, db), false
	}
	if v, ok := checkStream(want, got); !ok {
		return v, false
	}
	return Verdict{}, true
}

// checkStream checks the site a streaming answer's body sees.
func checkStream(want Expect, got *Identity) (Verdict, bool) {
	st := got.Stream
	if st == nil {
		return Verdict{}, true
	}
	const why = "the request's site does not hold once the view has returned (a StreamingHttpResponse's body runs after the middleware)"
	switch {
	case st.Sites != nil && st.Sites.ID != want.SiteID:
		return bad("serves site %d, expected %d, on %s while a streaming answer is sent: %s", st.Sites.ID, want.SiteID, want.Host, why), false
	case st.SiteID != nil && got.SiteIDSetting.Value != nil && *st.SiteID != *got.SiteIDSetting.Value:
		return bad("settings.SITE_ID is %d, expected %d, on %s while a streaming answer is sent: %s", *st.SiteID, *got.SiteIDSetting.Value, want.Host, why), false
	}
	return Verdict{}, true
}

// sameDomain reports whether two django_site domains name the same site:
// equal but for case and a final dot, or the same name where one of them
// has no port.
func sameDomain(a, b string) bool {
	norm := func(d string) (string, string) {
		d = strings.ToLower(strings.TrimSpace(d))
		name, port := d, ""
		if i := strings.LastIndexByte(d, ':'); i >= 0 && !strings.Contains(d[i:], "]") {
			name, port = d[:i], d[i+1:]
		}
		return strings.TrimSuffix(name, "."), port
	}
	an, ap := norm(a)
	bn, bp := norm(b)
	return an == bn && (ap == bp || ap == "" || bp == "")
}

// reason explains a wrong site from what the probe saw.
func reason(resolver string, want Expect, got *Identity) string {
	setting := got.SiteIDSetting
	mode := got.Overlay.Mode
	switch {
	case mode == string(ProbeOnly) && setting.Kind == KindInt && got.Env.SiteID != nil && *got.Env.SiteID == strconv.FormatInt(want.SiteID, 10):
		return fmt.Sprintf("settings ignore SITE_ID — %s sets SITE_ID = %d and the SITE_ID environment variable is not read; turn the overlay on (remove overlay = false / --no-overlay), or read it: SITE_ID = int(os.environ.get(\"SITE_ID\", %d))",
			orUnknown(got.Overlay.ProjectSettings), deref(setting.Value), deref(setting.Value))
	case mode == string(ProbeOnly) && setting.Kind == KindObject:
		return fmt.Sprintf("settings ignore SITE_ID — SITE_ID is a %s whose default the overlay would set; turn the overlay on, or build its default from the environment", setting.Class)
	case mode == string(ProbeOnly):
		return "the overlay is off (overlay = false / --no-overlay), so the settings decide, and they pick another site"
	case strings.HasPrefix(resolver, "Mezzanine"):
		return "Mezzanine's current_site_id() found another site: the Host matched that site's django_site.domain, or the admin's site switcher stored site_id in this browser's session"
	case strings.HasPrefix(resolver, "django-multisite"):
		return "django-multisite resolved the Host through multisite_alias to another site (or its fallback did); Host rewriting to the site's canonical alias is needed"
	case mode == string(Single) && got.Overlay.SiteID == nil && setting.Value != nil && *setting.Value != want.SiteID:
		return "the request's site did not reach SITE_ID: the engine's site header was missing or its secret wrong"
	case setting.Value != nil && *setting.Value != want.SiteID:
		return fmt.Sprintf("settings.SITE_ID is %d in this process although the overlay set it: something after the settings (an app's ready(), a middleware) changes it", *setting.Value)
	}
	return resolver + " resolved another site: the sites cache (SITE_CACHE) or a middleware that sets the site"
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func orUnknown(s string) string {
	if s == "" {
		return "the settings"
	}
	return s
}
