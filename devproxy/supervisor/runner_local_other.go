//go:build unix && !linux

package supervisor

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in its own process group. Without Pdeathsig,
// the watchdog and the pid-file sweep clean up after a killed siteplex.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
