package main

import "github.com/siteplex/siteplex/sites"

// dockerFinder returns the Docker-backed database finder (SPEC §7), or nil.
func dockerFinder(f *Factory) sites.DockerFinder { return nil }
