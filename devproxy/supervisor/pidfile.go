//go:build unix

package supervisor

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
	"github.com/siteplex/siteplex/sites/django"
)

// procTokenEnv is set in every site process's environment to a random
// token that is also in its pid file: the sweep kills only processes that
// carry it (grandchildren inherit it), never a process that reused a pid.
const procTokenEnv = "SITEPLEX_PROC"

// pidRecord is the JSON in .siteplex/pids/<slug>-<pid>.pid.
type pidRecord struct {
	PID   int      `json:"pid"`
	PGID  int      `json:"pgid"`
	Token string   `json:"token"`
	Slug  string   `json:"slug"`
	Argv  []string `json:"argv"`
	// Owner is the siteplex process that started it, OwnerStart its start
	// time in clock ticks since boot (/proc/<pid>/stat field 22).
	Owner      int       `json:"owner_pid"`
	OwnerStart uint64    `json:"owner_start"`
	Started    time.Time `json:"started"`
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func pidDir(stateDir string) string { return filepath.Join(stateDir, "pids") }

// writePidFile records a started process; it returns the file's path.
func writePidFile(stateDir string, rec pidRecord) (string, error) {
	dir := pidDir(stateDir)
	// .siteplex gets its .gitignore when siteplex creates it.
	if err := django.MakeStateDir(stateDir); err != nil {
		return "", fmt.Errorf("pid folder: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pid folder: %w", err)
	}
	rec.Owner = os.Getpid()
	rec.OwnerStart = proc.Start(rec.Owner)
	b, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-%d.pid", safeName(rec.Slug), rec.PID))
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("pid file: %w", err)
	}
	return p, nil
}

// SweepStale kills the processes a previous siteplex left behind: for every
// pid file in stateDir/pids whose owner is no longer running, every process
// carrying that file's token (the group leader, its children, even ones
// that left the group) gets SIGTERM, then SIGKILL after one second, and the
// file is removed. Files of a live siteplex (another `serve` of the same
// project) are left alone. killed counts the processes signalled.
// Call it before starting the supervisor.
func SweepStale(stateDir string) (killed int, err error) {
	entries, err := os.ReadDir(pidDir(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading pid folder: %w", err)
	}
	var stale []pidRecord
	var files []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".pid") {
			continue
		}
		p := filepath.Join(pidDir(stateDir), e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var rec pidRecord
		if json.Unmarshal(b, &rec) != nil || rec.PID <= 0 {
			_ = os.Remove(p) // not ours or truncated: nothing to kill safely
			continue
		}
		if rec.Owner == os.Getpid() || ownerAlive(rec) {
			continue
		}
		stale = append(stale, rec)
		files = append(files, p)
	}
	if len(stale) == 0 {
		return 0, nil
	}
	victims := findByTokens(stale)
	for _, pid := range victims {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(time.Second)
	for _, pid := range victims {
		for time.Now().Before(deadline) && proc.Alive(pid) {
			time.Sleep(20 * time.Millisecond)
		}
		if proc.Alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, p := range files {
		_ = os.Remove(p)
	}
	return len(victims), nil
}

func ownerAlive(rec pidRecord) bool {
	return rec.Owner > 0 && proc.Same(rec.Owner, rec.OwnerStart)
}

// findByTokens returns the pids of live processes whose environment holds
// one of the records' tokens. Without /proc it falls back to the recorded
// group leaders that are still alive.
func findByTokens(recs []pidRecord) []int {
	tokens := make(map[string]bool, len(recs))
	for _, r := range recs {
		if r.Token != "" {
			tokens[procTokenEnv+"="+r.Token] = true
		}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		var out []int
		for _, r := range recs {
			if proc.Alive(r.PID) {
				out = append(out, r.PID)
			}
		}
		return out
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if tokens[string(kv)] {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
