//go:build !linux

package truststore

import (
	"errors"
	"runtime"
)

// ErrNoSystemStore means siteplex cannot install into this system's trust
// store (yet): on macOS, run ManualCommand's command.
var ErrNoSystemStore = errors.New("installing into the system trust store is not supported on " + runtime.GOOS + " yet")

// DetectSystem finds the system store; outside Linux there is none yet.
func DetectSystem() (*SystemStore, error) { return nil, ErrNoSystemStore }

// ManualCommand is what to run by hand to trust certFile system-wide.
func ManualCommand(certFile string) string {
	if runtime.GOOS == "darwin" {
		return "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain " + certFile
	}
	return ""
}
