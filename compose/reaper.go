package compose

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

// The reaper is a small helper process (`siteplex docker-reaper`) that
// outlives siteplex by a moment: siteplex tells it, on its standard input,
// which containers it runs; when that input ends — siteplex exited, however
// it exited, SIGKILL included — it removes the site containers and stops
// the recreated web container that are still listed. A container dies at
// most a few seconds after siteplex (docs/supervisor.md, "No leftovers"), not at the next start.
//
// The protocol is one line per change: "remove <id>" (a site container),
// "stop <id>" (the web container in single mode), "forget <id>" (it is gone
// or stopped already).

// reaperGrace is how long a stopped web container gets before SIGKILL.
const reaperGrace = 3 * time.Second

// RunReaper reads the protocol from in until it ends, then removes or
// stops every container still listed. It is the body of the hidden
// `siteplex docker-reaper` command.
func RunReaper(in io.Reader) error {
	listed := map[string]string{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		action, id, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok || id == "" {
			continue
		}
		switch action {
		case "remove", "stop":
			listed[id] = action
		case "forget":
			delete(listed, id)
		}
	}
	if len(listed) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := Connect(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	var wg sync.WaitGroup
	errs := make(chan error, len(listed))
	for id, action := range listed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if action == "remove" {
				err = d.API.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
			} else {
				secs := int(reaperGrace / time.Second)
				err = d.API.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs})
			}
			if err != nil && !isGone(err) {
				errs <- fmt.Errorf("%s %s: %w", action, id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}

// reaper is the runner's end of the pipe to the reaper process.
type reaper struct {
	mu      sync.Mutex
	w       io.WriteCloser
	started bool
	err     error
}

// track tells the reaper about a container, starting the reaper process
// on first use. Without ReaperArgv it does nothing.
func (r *Runner) track(action, id string) {
	if len(r.ReaperArgv) == 0 {
		return
	}
	rp := &r.reaper
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if !rp.started {
		rp.started = true
		cmd := exec.Command(r.ReaperArgv[0], r.ReaperArgv[1:]...)
		// Its own session: Ctrl-C in siteplex's terminal must not end it
		// before it has done its job.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		cmd.Stdout, cmd.Stderr = nil, nil
		if r.ReaperLog != nil {
			cmd.Stdout, cmd.Stderr = r.ReaperLog, r.ReaperLog
		}
		w, err := cmd.StdinPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			rp.err = fmt.Errorf("starting the container reaper: %w", err)
			return
		}
		rp.w = w
		go cmd.Wait()
	}
	if rp.w == nil {
		return
	}
	fmt.Fprintf(rp.w, "%s %s\n", action, id)
}

// isGone reports whether a Docker error says the container no longer
// exists, is stopped already or is being removed.
func isGone(err error) bool {
	return cerrdefs.IsNotFound(err) || cerrdefs.IsNotModified(err) || cerrdefs.IsConflict(err)
}
