package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/siteplex/siteplex/sites"
	"github.com/siteplex/siteplex/sites/django"
)

// Whether the SITE_ID `use` writes reaches a dev server started by hand
// (docs/use.md, "Who reads the SITE_ID"): siteplex's own processes get it
// from the engine and the overlay whatever the settings do; a `manage.py
// runserver` the user starts sees it only when the settings read it from
// the environment and something loads the env file siteplex wrote.

// handCheckTimeout bounds the `manage.py shell` run that asks what SITE_ID
// a dev server started by hand gets.
const handCheckTimeout = 30 * time.Second

// useReachNote returns the note `use` prints when SITE_ID=id, just
// written to the env file, does not reach a `manage.py runserver` started
// by hand, and "" when it does or siteplex cannot tell (the settings cannot
// be read, the site framework is not django.contrib.sites: the source
// note covers that).
func useReachNote(ctx context.Context, p *sites.Project, id int64) string {
	if !p.IsDjango {
		return ""
	}
	info, err := p.Django(ctx)
	if err != nil || !info.Frameworks.Sites {
		return ""
	}
	s := info.SiteID
	var why string
	switch s.Kind {
	case django.KindEnv:
		got, ok := handSiteID(ctx, p)
		if !ok || got == strconv.FormatInt(id, 10) {
			return ""
		}
		why = fmt.Sprintf("the settings read $%s, but not from %s: a `manage.py runserver` started by hand gets SITE_ID %s", s.EnvVar, envName(p), got)
	case django.KindInt:
		if s.Value == id {
			return ""
		}
		why = fmt.Sprintf("%s is fixed in %s: a `manage.py runserver` started by hand keeps SITE_ID %d", s, info.SettingsModule, s.Value)
	case django.KindObject:
		why = fmt.Sprintf("%s in %s does not read the environment: a `manage.py runserver` started by hand keeps its default", s, info.SettingsModule)
	case django.KindMissing, django.KindNone:
		why = fmt.Sprintf("%s in %s: a `manage.py runserver` started by hand picks the site from the Host", s, info.SettingsModule)
	default:
		return ""
	}
	engine := fmt.Sprintf("siteplex's engine (serve, the UI) serves site %d on localhost and gives its processes SITE_ID=%d through the overlay", id, id)
	if !p.OverlayEnabled() {
		engine = fmt.Sprintf("siteplex's engine serves site %d on localhost, but with the overlay off its processes keep the settings' SITE_ID too", id)
	}
	return fmt.Sprintf("SITE_ID=%d in %s reaches only siteplex: %s; %s", id, envName(p), why, engine)
}

// handSiteID asks the project what SITE_ID a dev server started by hand
// gets: `manage.py shell -c` with siteplex's own environment, without the
// env file's variables (manage.py and the settings load what they load
// themselves). ok is false when it cannot be asked.
func handSiteID(ctx context.Context, p *sites.Project) (string, bool) {
	py, _, err := p.Python()
	if err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, handCheckTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "manage.py", "shell", "-c",
		"from django.conf import settings; print('SITEPLEX_SITE_ID=%r' % (settings.SITE_ID,))")
	cmd.Dir = p.Root
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", false
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "SITEPLEX_SITE_ID="); ok {
			return v, true
		}
	}
	return "", false
}
