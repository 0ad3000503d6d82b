package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// defaultDebounce is how long the code watcher waits after the last *.py
// change before it reports the batch.
const defaultDebounce = 300 * time.Millisecond

// ignoredDirs are folder names the code watcher never enters.
var ignoredDirs = map[string]bool{
	".git": true, ".hg": true, ".svn": true,
	"node_modules": true, "__pycache__": true,
	".venv": true, "venv": true,
	"media": true, ".siteplex": true,
	".tox": true, ".nox": true, ".mypy_cache": true, ".pytest_cache": true, ".ruff_cache": true,
}

// skipDir reports whether the watcher ignores the folder at path (base
// name in the list above, or a virtualenv: it holds pyvenv.cfg).
func skipDir(path string) bool {
	if ignoredDirs[filepath.Base(path)] {
		return true
	}
	_, err := os.Stat(filepath.Join(path, "pyvenv.cfg"))
	return err == nil
}

// watchedFile reports whether a change to name counts as a code change.
func watchedFile(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, ".py") && !strings.HasPrefix(base, ".#")
}

// watcher watches a project tree for changed *.py files (fsnotify, one
// inotify watch per folder, new folders added as they appear) and calls
// onChange with the changed paths (relative to the root, sorted) once no
// change came for the debounce interval.
type watcher struct {
	root     string
	debounce time.Duration
	onChange func(paths []string)
	onError  func(error)
	fw       *fsnotify.Watcher

	fireMu sync.Mutex // serialises onChange calls

	mu      sync.Mutex // guards pending, timer
	pending map[string]bool
	timer   *time.Timer
}

// newWatcher sets up watches on root and every folder below it that is not
// ignored. onChange runs on a timer goroutine, never concurrently with
// itself; it must not block for long. onError (nil = ignore) receives
// watch errors such as an exhausted inotify limit; watching goes on.
func newWatcher(root string, debounce time.Duration, onChange func(paths []string), onError func(error)) (*watcher, error) {
	if debounce <= 0 {
		debounce = defaultDebounce
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("code watcher: %w", err)
	}
	if onError == nil {
		onError = func(error) {}
	}
	w := &watcher{root: root, debounce: debounce, onChange: onChange, onError: onError, fw: fw, pending: map[string]bool{}}
	if err := w.addTree(root); err != nil {
		fw.Close()
		return nil, err
	}
	return w, nil
}

// addTree watches dir and the folders below it; it returns the first error
// only for dir itself.
func (w *watcher) addTree(dir string) error {
	first := true
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		isFirst := first
		first = false
		if err != nil {
			if isFirst {
				return fmt.Errorf("code watcher: %w", err)
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if !isFirst && skipDir(p) {
			return filepath.SkipDir
		}
		if err := w.fw.Add(p); err != nil {
			if isFirst {
				return fmt.Errorf("code watcher: watching %s: %w", p, err)
			}
			w.onError(fmt.Errorf("code watcher: watching %s: %w (raise fs.inotify.max_user_watches?)", p, err))
			return filepath.SkipDir
		}
		return nil
	})
}

// Run handles file events until ctx ends, then closes the watcher.
func (w *watcher) Run(ctx context.Context) error {
	defer w.stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fw.Events:
			if !ok {
				return nil
			}
			w.handle(ev)
		case err, ok := <-w.fw.Errors:
			if !ok {
				return nil
			}
			if err != nil && !errors.Is(err, fsnotify.ErrEventOverflow) {
				w.onError(fmt.Errorf("code watcher: %w", err))
			} else if err != nil {
				// Events were lost: assume code changed.
				w.mark(".")
			}
		}
	}
}

func (w *watcher) handle(ev fsnotify.Event) {
	if ev.Has(fsnotify.Create) {
		if st, err := os.Lstat(ev.Name); err == nil && st.IsDir() {
			if !skipDir(ev.Name) {
				_ = w.addTree(ev.Name)
				// Files may have landed before the watch was in place.
				_ = filepath.WalkDir(ev.Name, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.IsDir() && p != ev.Name && skipDir(p) {
						return filepath.SkipDir
					}
					if err == nil && !d.IsDir() && watchedFile(p) {
						w.mark(p)
					}
					return nil
				})
			}
			return
		}
	}
	if !watchedFile(ev.Name) {
		return
	}
	// Files inside ignored folders never reach us (no watch there), except
	// the root's own entries, which are fine.
	w.mark(ev.Name)
}

func (w *watcher) mark(p string) {
	rel, err := filepath.Rel(w.root, p)
	if err != nil {
		rel = p
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[rel] = true
	if w.timer == nil {
		w.timer = time.AfterFunc(w.debounce, w.fire)
	} else {
		w.timer.Reset(w.debounce)
	}
}

// fire runs on the timer goroutine.
func (w *watcher) fire() {
	w.fireMu.Lock()
	defer w.fireMu.Unlock()
	w.mu.Lock()
	paths := make([]string, 0, len(w.pending))
	for p := range w.pending {
		paths = append(paths, p)
	}
	clear(w.pending)
	w.timer = nil
	w.mu.Unlock()
	if len(paths) == 0 {
		return
	}
	sort.Strings(paths)
	w.onChange(paths)
}

func (w *watcher) stop() {
	w.fw.Close()
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.mu.Unlock()
}
