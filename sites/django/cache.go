package django

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/siteplex/siteplex/internal/safefile"
)

// cacheSchema changes whenever the cache's or the script's answer's shape
// does, so an older siteplex's cache is never misread.
const cacheSchema = 1

// CacheRequest adds the cache's whereabouts to a Request.
type CacheRequest struct {
	Request
	// File is the cache file (.siteplex/django.json); "" disables the cache.
	File string
	// EnvFile is the project's env file, whether it exists or not: its
	// mtime is part of the key, and its appearing refreshes the cache.
	EnvFile string
	// KeyDir holds the per-user key that encrypts passwords in the cache
	// (DefaultKeyDir); "" means passwords are not cached, so a cache entry
	// that needs one is never used.
	KeyDir string
}

// Outcome says how Load got its answer.
type Outcome struct {
	// Cached is true when the answer came from the cache (no Python ran).
	Cached bool
	// Took is how long Load took.
	Took time.Duration
}

// stamp is one file of the cache key.
type stamp struct {
	Path  string `json:"path"`
	Mtime int64  `json:"mtime_ns,omitempty"`
	Size  int64  `json:"size,omitempty"`
	// Absent is true for a file that did not exist (a local_settings.py the
	// settings tried to import): its appearance refreshes the cache.
	Absent bool `json:"absent,omitempty"`
}

func stampOf(path string) stamp {
	st, err := os.Stat(path)
	if err != nil {
		return stamp{Path: path, Absent: true}
	}
	s := stamp{Path: path, Mtime: st.ModTime().UnixNano()}
	if !st.IsDir() {
		s.Size = st.Size()
	}
	return s
}

type cacheKey struct {
	Python  stamp   `json:"python"`
	Guess   string  `json:"guess"`
	EnvFile string  `json:"env_file"`
	Files   []stamp `json:"files"`
	// Env is a hash of the environment variables the settings read.
	Env string `json:"env"`
}

type cacheFile struct {
	Schema int      `json:"schema"`
	Key    cacheKey `json:"key"`
	Info   *Info    `json:"info"`
	// Secrets are the databases' passwords, "alias/password" or
	// "alias/options/<key>" → AES-GCM sealed, base64.
	Secrets map[string]string `json:"secrets,omitempty"`
	// Unsealed is true when passwords could not be encrypted and were
	// left out: the entry is then never used for a database that has one.
	Unsealed bool   `json:"unsealed,omitempty"`
	Error    *Error `json:"error,omitempty"`
}

// Load returns the project's Info from the cache when every file and
// variable it was built from is unchanged, else runs Introspect and caches
// the answer. A failure of the settings or of importing Django is cached
// too (it is keyed by the same files, and by the interpreter's sys.path
// folders, so installing Django or fixing the settings retries); a timeout
// or an interpreter that does not run is not.
func Load(ctx context.Context, req CacheRequest) (*Info, Outcome, error) {
	start := time.Now()
	if req.File != "" {
		if info, cerr, ok := readCache(req); ok {
			out := Outcome{Cached: true, Took: time.Since(start)}
			if cerr != nil {
				return nil, out, cerr
			}
			return info, out, nil
		}
	}
	r := run(ctx, req.Request)
	out := Outcome{Took: time.Since(start)}
	if req.File != "" && (r.err == nil || r.err.Stage == "django" || r.err.Stage == "settings") {
		// A cache that cannot be written only costs speed.
		_ = writeCache(req, r)
	}
	if r.err != nil {
		return nil, out, r.err
	}
	return r.info, out, nil
}

// keyFor computes the key of info's run under req.
func keyFor(req CacheRequest, info *Info) cacheKey {
	k := cacheKey{Python: stampOf(req.Python), Guess: req.Guess, EnvFile: req.EnvFile}
	paths := map[string]bool{filepath.Join(req.Root, "manage.py"): true}
	if req.EnvFile != "" {
		paths[req.EnvFile] = true
	}
	for _, list := range [][]string{info.SettingsFiles, info.AbsentFiles, info.SysPath} {
		for _, p := range list {
			paths[p] = true
		}
	}
	for _, p := range sortedKeys(paths) {
		k.Files = append(k.Files, stampOf(p))
	}
	k.Env = envHash(req.Env, info.EnvRead, info.EnvAll)
	return k
}

// volatile are variables that change from shell to shell without meaning
// anything to a Django project; left out of the key when the settings read
// the whole environment.
var volatile = map[string]bool{"_": true, "PWD": true, "OLDPWD": true, "SHLVL": true, "COLUMNS": true, "LINES": true,
	"TERM": true, "TERM_SESSION_ID": true, "WINDOWID": true, "TMUX": true, "TMUX_PANE": true, "SSH_CLIENT": true,
	"SSH_CONNECTION": true, "SSH_TTY": true, "SSH_AUTH_SOCK": true, "DISPLAY": true, "XAUTHORITY": true}

// envHash hashes the values of names in env (the last assignment wins, as
// in exec). With all, every variable but the volatile ones counts.
func envHash(env, names []string, all bool) string {
	vals := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	if all {
		names = nil
		for k := range vals {
			if !volatile[k] && !strings.HasPrefix(k, "SITEPLEX_") {
				names = append(names, k)
			}
		}
	}
	names = slices.Clone(names)
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		v, ok := vals[n]
		fmt.Fprintf(h, "%q=%v:%q\n", n, ok, v)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readCache(req CacheRequest) (*Info, error, bool) {
	b, err := os.ReadFile(req.File)
	if err != nil {
		return nil, nil, false
	}
	var c cacheFile
	if json.Unmarshal(b, &c) != nil || c.Schema != cacheSchema || c.Info == nil {
		return nil, nil, false
	}
	if c.Key.Python != stampOf(req.Python) || c.Key.Guess != req.Guess || c.Key.EnvFile != req.EnvFile {
		return nil, nil, false
	}
	for _, s := range c.Key.Files {
		if stampOf(s.Path) != s {
			return nil, nil, false
		}
	}
	if c.Key.Env != envHash(req.Env, c.Info.EnvRead, c.Info.EnvAll) {
		return nil, nil, false
	}
	if c.Error != nil {
		return nil, c.Error, true
	}
	if c.Unsealed {
		for _, d := range c.Info.Databases {
			if d.Password != "" || len(d.SecretOptions) > 0 || hasSecretHint(d) {
				return nil, nil, false
			}
		}
	}
	if len(c.Secrets) > 0 {
		key, err := userKey(req.KeyDir, false)
		if err != nil {
			return nil, nil, false
		}
		if !openSecrets(key, c.Info, c.Secrets) {
			return nil, nil, false
		}
	}
	return c.Info, nil, true
}

// hasSecretHint is set on databases whose password was left out of an
// unsealed cache (see writeCache).
func hasSecretHint(d Database) bool { _, ok := d.Options[secretHint]; return ok }

const secretHint = "__siteplex_password_not_cached__"

func writeCache(req CacheRequest, r result) error {
	c := cacheFile{Schema: cacheSchema, Key: keyFor(req, r.info), Info: r.info, Error: r.err}
	if r.err == nil {
		secrets := collectSecrets(r.info)
		if len(secrets) > 0 {
			key, err := userKey(req.KeyDir, true)
			if err != nil {
				// Cache without the passwords, marked so it is not used.
				c.Unsealed = true
				cp := *r.info
				cp.Databases = map[string]Database{}
				for alias, d := range r.info.Databases {
					if d.Password != "" || len(d.SecretOptions) > 0 {
						opts := map[string]any{secretHint: true}
						for k, v := range d.Options {
							opts[k] = v
						}
						d.Options = opts
					}
					cp.Databases[alias] = d
				}
				c.Info = &cp
			} else if c.Secrets, err = seal(key, secrets); err != nil {
				return err
			}
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := MakeStateDir(filepath.Dir(req.File)); err != nil {
		return err
	}
	return safefile.Replace(req.File, b, 0o600, false, nil)
}

func collectSecrets(info *Info) map[string]string {
	out := map[string]string{}
	for alias, d := range info.Databases {
		if d.Password != "" {
			out[alias+"/password"] = d.Password
		}
		for k, v := range d.SecretOptions {
			out[alias+"/options/"+k] = v
		}
	}
	return out
}

func seal(key []byte, secrets map[string]string) (map[string]string, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(secrets))
	for name, v := range secrets {
		nonce := make([]byte, gcm.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		// The name is authenticated: a sealed value cannot be moved to
		// another field.
		out[name] = base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, []byte(v), []byte(name)))
	}
	return out, nil
}

func openSecrets(key []byte, info *Info, secrets map[string]string) bool {
	gcm, err := newGCM(key)
	if err != nil {
		return false
	}
	for name, enc := range secrets {
		b, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(b) < gcm.NonceSize() {
			return false
		}
		plain, err := gcm.Open(nil, b[:gcm.NonceSize()], b[gcm.NonceSize():], []byte(name))
		if err != nil {
			return false
		}
		alias, field, _ := strings.Cut(name, "/")
		d, ok := info.Databases[alias]
		if !ok {
			return false
		}
		if field == "password" {
			d.Password = string(plain)
		} else if opt, ok := strings.CutPrefix(field, "options/"); ok {
			if d.SecretOptions == nil {
				d.SecretOptions = map[string]string{}
			}
			d.SecretOptions[opt] = string(plain)
		}
		info.Databases[alias] = d
	}
	return true
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// DefaultKeyDir is where the per-user cache key lives:
// $XDG_STATE_HOME/siteplex, else $HOME/.local/state/siteplex; "" when
// neither is set. getenv reads the environment.
func DefaultKeyDir(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "siteplex")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "siteplex")
	}
	return ""
}

// userKey reads the 32-byte key in dir/cache.key, creating it (0600, in a
// 0700 folder) when create is true and it is missing.
func userKey(dir string, create bool) ([]byte, error) {
	if dir == "" {
		return nil, errors.New("no folder for the cache key")
	}
	path := filepath.Join(dir, "cache.key")
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !create {
		return nil, fmt.Errorf("cache key %s unusable", path)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return userKey(dir, false) // another siteplex made it meanwhile
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return key, nil
}
