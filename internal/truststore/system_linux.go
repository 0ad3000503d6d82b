package truststore

import (
	"errors"
	"os"
	"os/exec"
)

// systemStores are the known layouts, in the order they are tried:
// Fedora first (it has p11-kit's trust too), then Debian, then Arch.
var systemStores = [...]SystemStore{
	{"fedora", "/etc/pki/ca-trust/source/anchors", ".pem", []string{"update-ca-trust", "extract"}, "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", ""},
	{"debian", "/usr/local/share/ca-certificates", ".crt", []string{"update-ca-certificates"}, "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs"},
	{"arch", "/etc/ca-certificates/trust-source/anchors", ".crt", []string{"trust", "extract-compat"}, "/etc/ssl/certs/ca-certificates.crt", ""},
}

// ErrNoSystemStore means no known system trust store was found.
var ErrNoSystemStore = errors.New("no supported system trust store found (looked for update-ca-trust with /etc/pki/ca-trust/source/anchors, update-ca-certificates with /usr/local/share/ca-certificates, trust with /etc/ca-certificates/trust-source/anchors)")

// DetectSystem finds the system store: the first layout whose anchor
// folder exists and whose refresh command is on PATH.
func DetectSystem() (*SystemStore, error) {
	for _, s := range systemStores {
		if st, err := os.Stat(s.AnchorDir); err != nil || !st.IsDir() {
			continue
		}
		if _, err := exec.LookPath(s.Refresh[0]); err != nil {
			continue
		}
		return &s, nil
	}
	return nil, ErrNoSystemStore
}

// ManualCommand is what to run by hand to trust certFile system-wide where
// siteplex cannot; "" on Linux, where DetectSystem's error says what is
// missing.
func ManualCommand(certFile string) string { return "" }
