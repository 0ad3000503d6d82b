package django

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoPython means no interpreter was found for the project.
var ErrNoPython = errors.New("no Python found: none of .venv/bin/python, venv/bin/python, python3 on PATH")

// FindPython returns the interpreter for the project in root and says
// where it came from. explicit is --python or the config key python
// (relative paths are relative to base; a bare name is looked up on
// PATH); "" means: the first of root/.venv/bin/python,
// root/venv/bin/python, python3 on PATH — the same order as the default
// dev-server command.
func FindPython(root, explicit, explicitFrom, base string) (path, from string, err error) {
	if explicit != "" {
		p := explicit
		if !strings.ContainsRune(p, filepath.Separator) {
			lp, err := exec.LookPath(p)
			if err != nil {
				return "", explicitFrom, fmt.Errorf("%s %q: not found on PATH", explicitFrom, explicit)
			}
			return lp, explicitFrom, nil
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", explicitFrom, fmt.Errorf("%s %q: not an executable file", explicitFrom, explicit)
		}
		return p, explicitFrom, nil
	}
	for _, rel := range []string{".venv/bin/python", "venv/bin/python"} {
		p := filepath.Join(root, rel)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, rel, nil
		}
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		return "", "", ErrNoPython
	}
	return p, "python3 on PATH", nil
}
