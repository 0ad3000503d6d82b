package testenv

import (
	"os"
	"strings"
	"syscall"
)

// unmountUnder lazily unmounts every mount point below dir.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// serverProcAttr runs a server (a database, dockerd) as uid/gid (-1: as we are) in its
// own process group, and ends it when the test binary goes, even on
// SIGKILL (Go sets the parent-death signal after changing the user, so it
// survives the switch).
func serverProcAttr(uid, gid int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if uid >= 0 {
		a.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	}
	return a
}
