package django

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MakeStateDir creates dir (a project's .siteplex folder) and its parents
// when missing. When it creates dir, it writes dir/.gitignore holding "*",
// so nothing siteplex keeps there ever shows in `git status`. An existing
// folder is left as it is.
func MakeStateDir(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s is a file, not a folder", dir)
		}
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	} else if err != nil {
		return nil // created by someone else meanwhile
	}
	return os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("# Written by siteplex: nothing here belongs in git.\n*\n"), 0o644)
}
