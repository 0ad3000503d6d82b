//go:build !linux

package testenv

import "syscall"

// dockerdSysProcAttr puts dockerd in its own process group.
func dockerdSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// unmountUnder does nothing: private engines are a Linux affair.
func unmountUnder(string) {}
