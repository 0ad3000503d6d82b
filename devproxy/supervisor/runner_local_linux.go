package supervisor

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in its own process group and has the kernel
// SIGKILL it when siteplex dies (Pdeathsig; it fires when the thread that
// forked the child exits, and Go only ends threads of goroutines that
// exit while locked to them, which siteplex never does around Start).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
}
