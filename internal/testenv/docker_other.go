//go:build !linux

package testenv

import "syscall"

// unmountUnder does nothing: private engines are a Linux affair.
func unmountUnder(string) {}

// serverProcAttr runs a server (a database, dockerd) as uid/gid (-1: as we are) in its
// own process group.
func serverProcAttr(uid, gid int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if uid >= 0 {
		a.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	}
	return a
}
