package django

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

//go:embed introspect.py
var introspectScript string

// DefaultTimeout bounds one introspection run: Python's and Django's
// start-up, the settings import and django.setup().
const DefaultTimeout = 30 * time.Second

// Request says how to run the introspection.
type Request struct {
	// Root is the project root: the run's working folder.
	Root string
	// Python is the interpreter (FindPython).
	Python string
	// Env is the run's whole environment: siteplex's, with the env file's
	// variables and [process] env from siteplex.toml applied, as the dev
	// processes get it.
	Env []string
	// Guess is the settings module GuessSettings found ("" none): the
	// script uses it when running manage.py does not set one.
	Guess string
	// Timeout bounds the run; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Error is a failed introspection. Its message is one line: what ran, then
// the last line of the traceback (with the project file and line), never a
// password.
type Error struct {
	// Ran describes the command: "/usr/bin/python3 <siteplex
	// introspection> in /path/proj".
	Ran string
	// Stage is where it failed: "python" (the interpreter did not run or
	// answer), "django" (Django cannot be imported), "settings" (no
	// settings module, or importing it raised), "timeout".
	Stage string
	// Msg is the last line of the traceback or the reason.
	Msg string
}

func (e *Error) Error() string {
	return "asking Django failed: ran " + e.Ran + ": " + e.Msg
}

// NoDjango reports whether the interpreter could not run Django at all
// (no Python, Django not importable): the case where siteplex falls back to
// its heuristics without the project being broken.
func (e *Error) NoDjango() bool { return e.Stage == "python" || e.Stage == "django" }

// wire is the script's answer: Info plus what Info keeps out of JSON.
type wire struct {
	Info
	Databases map[string]wireDatabase `json:"databases"`
	Error     *struct {
		Stage   string `json:"stage"`
		Message string `json:"message"`
	} `json:"error"`
}

type wireDatabase struct {
	Engine   string         `json:"engine"`
	Name     string         `json:"name"`
	Host     string         `json:"host"`
	Port     string         `json:"port"`
	User     string         `json:"user"`
	Password string         `json:"password"`
	Options  map[string]any `json:"options"`
}

func (w wireDatabase) database() Database {
	d := Database{Engine: w.Engine, Name: w.Name, Host: w.Host, Port: w.Port, User: w.User, Password: w.Password, Options: map[string]any{}}
	for k, v := range w.Options {
		if strings.Contains(strings.ToLower(k), "pass") {
			if d.SecretOptions == nil {
				d.SecretOptions = map[string]string{}
			}
			d.SecretOptions[k] = fmt.Sprint(v)
			continue
		}
		d.Options[k] = v
	}
	return d
}

// result is one run's outcome: the Info (also on failure, for the files
// the settings read before failing) and the error.
type result struct {
	info *Info
	err  *Error
}

// Introspect runs the embedded script once, without the cache.
func Introspect(ctx context.Context, req Request) (*Info, error) {
	r := run(ctx, req)
	if r.err != nil {
		return nil, r.err
	}
	return r.info, nil
}

func run(ctx context.Context, req Request) result {
	timeout := req.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ran := req.Python + " <siteplex introspection> in " + req.Root
	if req.Guess != "" {
		ran += " (settings " + req.Guess + ")"
	}
	fail := func(stage, msg string) result {
		return result{info: &Info{}, err: &Error{Ran: ran, Stage: stage, Msg: redact(msg)}}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pr, pw, err := os.Pipe()
	if err != nil {
		return fail("python", err.Error())
	}
	defer pr.Close()
	// -B: write no __pycache__ into the project; "-": the script on stdin.
	cmd := exec.CommandContext(ctx, req.Python, "-B", "-")
	cmd.Dir = req.Root
	cmd.Env = append(append([]string(nil), req.Env...), "SITEPLEX_SETTINGS_GUESS="+req.Guess)
	cmd.Stdin = strings.NewReader(introspectScript)
	var stderr limitedBuffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	cmd.ExtraFiles = []*os.File{pw}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fail("python", err.Error())
	}
	pw.Close()
	out, _ := io.ReadAll(io.LimitReader(pr, 64<<20))
	werr := cmd.Wait()
	if ctx.Err() == context.DeadlineExceeded {
		return fail("timeout", fmt.Sprintf("timed out after %s (settings that wait for a network service?)", timeout))
	}
	if err := ctx.Err(); err != nil {
		return fail("timeout", err.Error())
	}
	if len(bytes.TrimSpace(out)) == 0 {
		msg := lastLine(stderr.String())
		if msg == "" && werr != nil {
			msg = werr.Error()
		}
		if msg == "" {
			msg = "the script gave no answer"
		}
		return fail("python", msg)
	}
	var w wire
	if err := json.Unmarshal(out, &w); err != nil {
		return fail("python", "unreadable answer: "+err.Error())
	}
	info := w.Info
	info.Databases = make(map[string]Database, len(w.Databases))
	for k, v := range w.Databases {
		info.Databases[k] = v.database()
	}
	if w.Error != nil {
		if info.SettingsModule != "" {
			ran = req.Python + " <siteplex introspection> in " + req.Root + " (settings " + info.SettingsModule + ")"
		}
		return result{info: &info, err: &Error{Ran: ran, Stage: w.Error.Stage, Msg: redact(w.Error.Message)}}
	}
	return result{info: &info}
}

// passwordRe finds the password of a URL in a message.
var passwordRe = regexp.MustCompile(`(://[^/\s:@]*:)[^@\s/]+@`)

// redact removes URL passwords from a traceback line.
func redact(s string) string { return passwordRe.ReplaceAllString(s, "${1}xxxxx@") }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// limitedBuffer keeps the last 64 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	if len(l.b) > 64<<10 {
		l.b = l.b[len(l.b)-64<<10:]
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

// IsError reports whether err is (or wraps) an introspection *Error and
// returns it.
func IsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
