package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/siteplex/siteplex/compose"
	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/sites"
)

// dockerFinder returns the Docker-backed database finder (docs/docker.md). It
// connects on each lookup; without a reachable engine the lookup says
// "Docker is not reachable at <host>: <error>".
func dockerFinder(f *Factory) sites.DockerFinder {
	getenv := f.Opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return &compose.Finder{Getenv: getenv}
}

// dockerRunnerFor is Factory.DockerRunner: the docker runner for p, with
// the reaper that removes its containers when siteplex exits.
func dockerRunnerFor(ctx context.Context, p *sites.Project) (supervisor.Runner, error) {
	r, err := newDockerRunner(ctx, p)
	if err != nil {
		return nil, err
	}
	if exe, err := os.Executable(); err == nil {
		r.ReaperArgv = []string{exe, "docker-reaper"}
		logs := filepath.Join(p.StateDir(), "logs")
		if _, err := p.EnsureStateDir(); err == nil && os.MkdirAll(logs, 0o755) == nil {
			if lf, err := os.OpenFile(filepath.Join(logs, "docker-reaper.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err == nil {
				r.ReaperLog = lf
			}
		}
	}
	return r, nil
}

// newCmdDockerReaper is the hidden helper the docker runner starts: it
// removes the runner's containers once siteplex has exited (see
// compose.RunReaper).
func newCmdDockerReaper(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:    "docker-reaper",
		Short:  "Remove siteplex's containers once siteplex exits (started by --runner docker)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// It must outlive siteplex's own end, signals included.
			signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			return compose.RunReaper(f.IO.In)
		},
	}
}

// newDockerRunner connects to Docker and makes the runner for p.
func newDockerRunner(ctx context.Context, p *sites.Project) (*compose.Runner, error) {
	d, err := compose.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("--runner docker: %w", err)
	}
	r, err := compose.NewRunner(ctx, d, p.Root, compose.ProjectName(p.Root, p.Getenv), p.Name)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("--runner docker: %w", err)
	}
	for k := range p.Env.Values {
		r.EnvKeys = append(r.EnvKeys, k)
	}
	sort.Strings(r.EnvKeys)
	return r, nil
}

// recreateDockerWeb recreates the compose web container with the new
// SITE_ID when the project runs single mode with the docker runner
// (siteplex.toml: mode = "single", [process] runner = "docker") and no
// engine is running to do it: a plain restart keeps the old environment.
func recreateDockerWeb(ctx context.Context, f *Factory, p *sites.Project, site *sites.Site, id int64) error {
	if p.Config.Mode != string(devproxy.Single) || p.Config.Process.Runner != "docker" {
		return nil
	}
	r, err := newDockerRunner(ctx, p)
	if err != nil {
		return fmt.Errorf("SITE_ID is written, but the web container was not recreated: %w", err)
	}
	s := sites.Site{ID: id}
	if site != nil {
		s = *site
	}
	env := []string{"SITE_ID=" + strconv.FormatInt(id, 10)}
	for k, v := range p.Env.Values {
		if k != "SITE_ID" {
			env = append(env, k+"="+v)
		}
	}
	proc, err := r.Start(ctx, supervisor.ProcessSpec{Site: s, Env: env, Dir: p.Root, Single: true})
	if err != nil {
		return fmt.Errorf("SITE_ID is written, but the web container was not recreated: %w", err)
	}
	// Say "serving" only once it accepts connections, as the engine waits
	// before it forwards: a request in between would get an empty answer.
	if err := waitAccepting(ctx, proc.Addr(), supervisor.DefaultBootTimeout); err != nil {
		return fmt.Errorf("SITE_ID is written and the web container recreated, but %w: `docker logs` of the web container shows why", err)
	}
	fmt.Fprintf(f.IO.Out, "recreated the web container with SITE_ID=%d (serving at %s)\n", id, proc.Addr())
	return nil
}

// waitAccepting waits until addr accepts a TCP connection, for at most
// limit.
func waitAccepting(ctx context.Context, addr string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	d := net.Dialer{Timeout: time.Second}
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing accepted connections on %s within %s", addr, limit)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
