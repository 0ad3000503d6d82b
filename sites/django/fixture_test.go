package django

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
)

// fixture is testenv.DjangoFixture.
func fixture(t *testing.T, name string, migrate bool) string {
	t.Helper()
	return testenv.DjangoFixture(t, name, migrate)
}

// testRequest is a CacheRequest for dir with Debian's Python.
func testRequest(t *testing.T, dir string) CacheRequest {
	env := os.Environ()
	return CacheRequest{
		Request: Request{Root: dir, Python: testenv.Python, Env: env,
			Guess: GuessSettings(dir, "", "", "").Module},
		File:   filepath.Join(dir, ".siteplex", "django.json"),
		KeyDir: filepath.Join(t.TempDir(), "state"),
	}
}

func mustIntrospect(t *testing.T, dir string) *Info {
	t.Helper()
	info, _, err := Load(context.Background(), testRequest(t, dir))
	if err != nil {
		t.Fatalf("introspecting %s: %v", dir, err)
	}
	return info
}

// server is a real `manage.py runserver` started for a test.
type server struct {
	port int
	cmd  *exec.Cmd
	log  *testenv.Buffer
}

// startServer runs runserver in dir with extra env applied over the
// process environment, and waits until it answers.
func startServer(t *testing.T, dir string, extra ...string) *server {
	t.Helper()
	port := testenv.MustFreePort(t)
	cmd := exec.Command(testenv.Python, "-B", "manage.py", "runserver", "127.0.0.1:"+strconv.Itoa(port), "--noreload")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.Env = append(cmd.Env, extra...)
	log := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{port: port, cmd: cmd, log: log}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("runserver in %s did not start:\n%s", dir, s.log.String())
	return nil
}

// get sends GET path with Host host and headers (key, value pairs).
func (s *server) get(t *testing.T, path, host string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return s.do(t, req)
}

func (s *server) do(t *testing.T, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v\n%s", req.Method, req.URL, req.Host, err, s.log.String())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// runPython runs script with Debian's Python in dir, env added to the
// process environment, and returns its output, trimmed; a failure fails
// the test with the output.
func runPython(t *testing.T, dir string, env []string, script string) string {
	t.Helper()
	cmd := exec.Command(testenv.Python, "-B", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
