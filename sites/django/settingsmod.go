package django

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	// os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
	setdefaultRe = regexp.MustCompile(`environ\.setdefault\(\s*['"]DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([\w.]+)['"]\s*\)`)
	// os.environ["DJANGO_SETTINGS_MODULE"] = "proj.settings"
	assignRe = regexp.MustCompile(`environ\[\s*['"]DJANGO_SETTINGS_MODULE['"]\s*\]\s*=\s*['"]([\w.]+)['"]`)
	// Mezzanine's template: "%s.settings" % real_project_name("proj")
	mezzanineRe = regexp.MustCompile(`['"]%s\.([\w.]+)['"]\s*%\s*real_project_name\(\s*['"](\w+)['"]\s*\)`)
)

// SettingsGuess is what siteplex can tell about the settings module without
// Python.
type SettingsGuess struct {
	// Module is the settings module ("" when none was found).
	Module string
	// From says where it came from: "DJANGO_SETTINGS_MODULE in .env-local",
	// "$DJANGO_SETTINGS_MODULE", "manage.py", "guess (proj/settings.py)".
	From string
	// ManagePyAssigns is true when manage.py assigns the variable instead
	// of calling setdefault: it then overrides the environment, and the
	// overlay cannot be put in front of the settings.
	ManagePyAssigns bool
	// ManagePyMentions is true when manage.py names DJANGO_SETTINGS_MODULE
	// at all (so running it can tell).
	ManagePyMentions bool
}

// GuessSettings finds the settings module the project would use, without
// Python: envFile (the env file's DJANGO_SETTINGS_MODULE, envFileName its
// name), then environ (siteplex's environment), then manage.py's
// os.environ.setdefault; an assignment in manage.py wins over both, as it
// does when manage.py runs. Failing those, a single <pkg>/settings.py or
// <pkg>/settings/__init__.py next to manage.py, or settings.py in the root
// (Divio's aldryn layout).
func GuessSettings(root, envFile, envFileName, environ string) SettingsGuess {
	var g SettingsGuess
	b, _ := os.ReadFile(filepath.Join(root, "manage.py"))
	src := string(b)
	g.ManagePyMentions = strings.Contains(src, "DJANGO_SETTINGS_MODULE")
	if m := assignRe.FindStringSubmatch(src); m != nil {
		g.Module, g.From, g.ManagePyAssigns = m[1], "manage.py", true
		return g
	}
	switch {
	case envFile != "":
		g.Module, g.From = envFile, "DJANGO_SETTINGS_MODULE in "+envFileName
		return g
	case environ != "":
		g.Module, g.From = environ, "$DJANGO_SETTINGS_MODULE"
		return g
	}
	if m := setdefaultRe.FindStringSubmatch(src); m != nil {
		g.Module, g.From = m[1], "manage.py"
		return g
	}
	if m := mezzanineRe.FindStringSubmatch(src); m != nil {
		g.Module, g.From = m[2]+"."+m[1], "manage.py"
		return g
	}
	var found []string
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		for _, rel := range []string{"settings.py", filepath.Join("settings", "__init__.py")} {
			if fileExists(filepath.Join(root, e.Name(), rel)) && fileExists(filepath.Join(root, e.Name(), "__init__.py")) {
				found = append(found, e.Name())
				break
			}
		}
	}
	switch {
	case len(found) == 1:
		g.Module, g.From = found[0]+".settings", "guess ("+found[0]+"/settings)"
	case len(found) == 0 && fileExists(filepath.Join(root, "settings.py")):
		g.Module, g.From = "settings", "guess (settings.py)"
	}
	return g
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
