package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/sites"
)

// The supervisor tests run tiny child processes by re-executing the test
// binary: `<test binary> -test.run=^TestSupervisorChild$ -- supervisor-child MODE ARGS`.

const svChildMarker = "supervisor-child"

// childCmd is the argv template of a child in mode.
func svChildCmd(t testing.TB, mode ...string) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{exe, "-test.run=^TestSupervisorChild$", "--", svChildMarker}, mode...)
}

func svChildArgs() []string {
	for i, a := range os.Args {
		if a == "--" && i+1 < len(os.Args) && os.Args[i+1] == svChildMarker {
			return os.Args[i+2:]
		}
	}
	return nil
}

// TestSupervisorChild is not a test: it is the child process of the other
// tests, and returns at once in a normal run.
func TestSupervisorChild(t *testing.T) {
	args := svChildArgs()
	if args == nil {
		return
	}
	os.Exit(svRunChild(args))
}

// svChildReply is what a serving child answers.
type svChildReply struct {
	PID    int               `json:"pid"`
	SiteID string            `json:"site_id"`
	Port   string            `json:"port"`
	Args   []string          `json:"args"`
	Env    map[string]string `json:"env"`
	// ListenAt is when the child's port started accepting (Unix ns).
	ListenAt int64 `json:"listen_at"`
}

func svRunChild(args []string) int {
	mode := args[0]
	switch mode {
	case "serve":
		return svChildServe()
	case "grandchild":
		exe, _ := os.Executable()
		gc := exec.Command(exe, "-test.run=^TestSupervisorChild$", "--", svChildMarker, "sleep")
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "grandchild:", err)
			return 1
		}
		f := "family-" + os.Getenv("SITE_ID")
		_ = os.WriteFile(f+".tmp", fmt.Appendf(nil, "%d %d", os.Getpid(), gc.Process.Pid), 0o644)
		_ = os.Rename(f+".tmp", f)
		return svChildServe()
	case "sleep":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		time.Sleep(time.Hour)
		return 0
	case "crash":
		fmt.Println("booting")
		fmt.Fprintln(os.Stderr, "Traceback (most recent call last):")
		fmt.Fprintln(os.Stderr, "RuntimeError: child crashed on purpose")
		return 1
	case "crash-if":
		if _, err := os.Stat(args[1]); err == nil {
			fmt.Fprintln(os.Stderr, "Traceback (most recent call last):")
			// No final newline: the last partial line must still be logged.
			fmt.Fprint(os.Stderr, "RuntimeError: "+args[1]+" exists")
			return 1
		}
		return svChildServe()
	case "noserve":
		fmt.Println("not listening on purpose")
		time.Sleep(time.Hour)
		return 0
	case "longline":
		fmt.Println(strings.Repeat("x", 200<<10))
		fmt.Println("after the long line")
		return svChildServe()
	case "host":
		return svChildHost()
	}
	fmt.Fprintln(os.Stderr, "unknown child mode", mode)
	return 2
}

func svChildServe() int {
	if d, err := time.ParseDuration(os.Getenv("CHILD_BOOT_DELAY")); err == nil {
		time.Sleep(d)
	}
	port := os.Getenv("PORT")
	fmt.Println("child: serving on port", port)
	fmt.Fprintln(os.Stderr, "child: a line on stderr")
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	listenAt := time.Now().UnixNano()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if ms, _ := strconv.Atoi(r.URL.Query().Get("sleep_ms")); ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		rep := svChildReply{PID: os.Getpid(), SiteID: os.Getenv("SITE_ID"), Port: port, Args: os.Args, Env: map[string]string{}, ListenAt: listenAt}
		for _, k := range r.URL.Query()["env"] {
			rep.Env[k] = os.Getenv(k)
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
	err = http.Serve(ln, mux)
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// childHost runs a supervisor in this process (the "siteplex" that the
// parent test SIGKILLs): one site whose process has a grandchild.
func svChildHost() int {
	root := os.Getenv("HOST_ROOT")
	p, err := sites.Load(sites.Options{Project: root})
	if err != nil {
		fmt.Println("host:", err)
		return 1
	}
	exe, _ := os.Executable()
	s := New(Config{
		Project: p,
		Command: []string{exe, "-test.run=^TestSupervisorChild$", "--", svChildMarker, "grandchild"},
	}, nil)
	site := sites.Site{ID: 7, Slug: "seven", Domain: "seven.test"}
	s.SetSites([]sites.Site{site}, 0)
	if _, _, err := s.Acquire(context.Background(), &site); err != nil {
		fmt.Println("host:", err)
		return 1
	}
	fmt.Println("READY")
	time.Sleep(time.Hour)
	return 0
}
