// Command siteplex is the local-development companion for multi-site
// Django projects: it lists the project's sites, forces a SITE_ID, manages
// /etc/hosts entries and runs a Host-routing proxy with one dev process per
// site, in a terminal UI or headless.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the exit status.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := newFactory(systemIO())
	return execute(ctx, f, args)
}
