package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Docker is a Docker engine the tests may use.
type Docker struct {
	// Host is the DOCKER_HOST value ("unix:///…/sock").
	Host string
	// Own is true when StartDocker started this engine (and StopDocker
	// stops it).
	Own    bool
	dir    string
	proc   *os.Process
	exited chan struct{}
}

var (
	docker service[*Docker]

	atStopMu sync.Mutex
	atStop   []func()
)

// AtDockerStop registers fn (removing an image, say) to run in StopDocker,
// before the engine stops: things a test binary shares between its tests
// are removed even when a test fails.
func AtDockerStop(fn func()) {
	atStopMu.Lock()
	defer atStopMu.Unlock()
	atStop = append(atStop, fn)
}

// StartDocker returns a Docker engine for the tests and sets DOCKER_HOST
// to it. It uses the engine DOCKER_HOST (or /var/run/docker.sock) names
// when that answers; otherwise it starts, once per test binary, a private
// dockerd (vfs storage driver, its own data root, exec root, pid file and
// socket in a temp folder, no default bridge, no iptables). It skips the
// test loudly (Missing) when dockerd is not installed or does not start.
// Call StopDocker from TestMain.
func StartDocker(t testing.TB) *Docker {
	t.Helper()
	d := docker.get(t, "Docker", startDocker)
	os.Setenv("DOCKER_HOST", d.Host)
	return d
}

// StopDocker stops the engine StartDocker started, if any, and removes its
// folder. Call it from TestMain after m.Run.
func StopDocker() {
	atStopMu.Lock()
	fns := atStop
	atStop = nil
	atStopMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	d := docker.inst
	if d == nil || !d.Own {
		return
	}
	stopProcess(d.proc, d.exited, 20*time.Second)
	// Mounts dockerd left behind (netns, shm) would keep RemoveAll from
	// emptying the folder.
	unmountUnder(d.dir)
	os.RemoveAll(d.dir)
}

// pingDocker reports whether the engine at a unix socket answers /_ping.
func pingDocker(sock string) error {
	c := http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := c.Get("http://docker/_ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping answered %s", resp.Status)
	}
	return nil
}

func startDocker() (*Docker, error) {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		if sock, ok := strings.CutPrefix(h, "unix://"); ok && pingDocker(sock) == nil {
			return &Docker{Host: h}, nil
		}
	} else if pingDocker("/var/run/docker.sock") == nil {
		return &Docker{Host: "unix:///var/run/docker.sock"}, nil
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, fmt.Errorf("dockerd not found (apt-get install docker.io): %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("starting a private dockerd needs root")
	}
	sweepDockerDirs()
	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("/tmp", "spdk-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "sock")
	// A random address pool so two test binaries' engines do not pick the
	// same subnets for their networks.
	pool := fmt.Sprintf("base=10.%d.0.0/16,size=24", 100+rand.IntN(150))
	cmd := exec.Command(bin,
		"--storage-driver=vfs",
		"--data-root="+filepath.Join(dir, "data"),
		"--exec-root="+filepath.Join(dir, "exec"),
		"--pidfile="+filepath.Join(dir, "dockerd.pid"),
		"-H", "unix://"+sock,
		"--bridge=none", "--iptables=false", "--ip-masq=false",
		"--default-address-pool", pool,
	)
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	// dockerd goes when the test binary goes, even on SIGKILL.
	cmd.SysProcAttr = serverProcAttr(-1, -1)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting dockerd: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if pingDocker(sock) == nil {
			return &Docker{Host: "unix://" + sock, Own: true, dir: dir, proc: cmd.Process, exited: exited}, nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("dockerd exited (%v): %s", waitErr, lastLines(log, 20))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, fmt.Errorf("dockerd did not answer on %s within 60s (log: %s)", sock, filepath.Join(dir, "dockerd.log"))
		}
	}
}

// sweepDockerDirs removes the folders of private engines whose dockerd is
// gone (a test binary that was killed could not clean up).
func sweepDockerDirs() {
	dirs, _ := filepath.Glob("/tmp/spdk-*")
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "dockerd.pid"))
		if err == nil {
			var pid int
			fmt.Sscan(string(b), &pid)
			if pid > 0 && syscall.Kill(pid, 0) == nil {
				continue // still running
			}
		} else if st, err := os.Stat(dir); err != nil || time.Since(st.ModTime()) < 5*time.Minute {
			continue // starting right now, or gone
		}
		unmountUnder(dir)
		os.RemoveAll(dir)
	}
}
