package doctor

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// DefaultListen are the proxy's addresses when neither --listen nor the
// config name any (docs/engine.md).
var DefaultListen = []string{"127.0.0.1:80", "[::1]:80"}

// DefaultHTTPS are the HTTPS addresses once the local CA exists, when
// neither --https nor the config name any (docs/https.md).
func DefaultHTTPS() []string { return []string{"127.0.0.1:443", "[::1]:443"} }

// ProxyPort binds each address and releases it at once. A refused
// privileged port fails with the three ways out (setcap, the
// net.ipv4.ip_unprivileged_port_start sysctl, another port); a port in
// use fails naming the process that holds it when /proc shows it, unless
// that process is siteplex itself. An IPv6 loopback the machine does not
// have only warns.
func ProxyPort(ctx context.Context, addrs []string) Check {
	if len(addrs) == 0 {
		addrs = DefaultListen
	}
	return portCheck(ctx, NameProxyPort, addrs, "--listen 127.0.0.1:8080", "")
}

// HTTPSPort checks the HTTPS addresses as ProxyPort checks the plain ones
// (the check https_port). byDefault says HTTPS is on only because the
// local CA exists; the fixes then also name --https off.
func HTTPSPort(ctx context.Context, addrs []string, byDefault bool) Check {
	off := ""
	if byDefault {
		off = `--https off (HTTPS is on because the local CA exists; in siteplex.toml: https = "off")`
	}
	return portCheck(ctx, NameHTTPSPort, addrs, "--https 127.0.0.1:8443", off)
}

// HTTPSOff is the https_port check when siteplex serves no HTTPS: ok,
// saying why.
func HTTPSOff(why string) Check { return ok(NameHTTPSPort, "HTTPS is off: "+why) }

// portCheck binds each address and releases it at once (ProxyPort).
// other is the flag that picks another address; off, when set, is one
// more way out.
func portCheck(ctx context.Context, name string, addrs []string, other, off string) Check {
	worst := OK
	var details, fixes []string
	raise := func(s Status) {
		if s == Fail || s == Warn && worst == OK {
			worst = s
		}
	}
	addFix := func(f string) {
		for _, x := range fixes {
			if x == f {
				return
			}
		}
		fixes = append(fixes, f)
	}
	for _, addr := range addrs {
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp", addr)
		if err == nil {
			details = append(details, addr+" is free")
			l.Close()
			continue
		}
		_, portStr, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(portStr)
		switch errno(err) {
		case syscall.EACCES, syscall.EPERM:
			raise(Fail)
			start := unprivilegedPortStart()
			d := fmt.Sprintf("cannot bind %s: permission denied", addr)
			if start > 0 {
				d += fmt.Sprintf(" (ports below %d need privileges: net.ipv4.ip_unprivileged_port_start = %d)", start, start)
			}
			details = append(details, d)
			addFix(privilegedPortFix(port, other, off))
		case syscall.EADDRINUSE:
			who := portHolder(port)
			if who.comm == "siteplex" {
				raise(OK)
				details = append(details, fmt.Sprintf("%s is served by a running siteplex (pid %d)", addr, who.pid))
				continue
			}
			raise(Fail)
			d := addr + " is already in use"
			switch {
			case who.pid > 0:
				d += fmt.Sprintf(" by %s (pid %d)", who.comm, who.pid)
			case who.found:
				d += " by a process siteplex cannot see (another user's; `sudo ss -ltnp 'sport = :" + portStr + "'` names it)"
			}
			details = append(details, d)
			fix := "stop what listens on port " + portStr + ", or give siteplex another address: " + other
			if off != "" {
				fix += "; or " + off
			}
			addFix(fix)
		case syscall.EADDRNOTAVAIL, syscall.EAFNOSUPPORT:
			raise(Warn)
			details = append(details, fmt.Sprintf("%s is not available on this machine (%v); siteplex listens on the other addresses", addr, errno(err)))
		default:
			raise(Fail)
			details = append(details, fmt.Sprintf("cannot bind %s: %v", addr, err))
			addFix("check the address (host:port), or use " + other)
		}
	}
	return Check{Name: name, Status: worst, Detail: strings.Join(details, "; "), Fix: strings.Join(fixes, "; ")}
}

// privilegedPortFix names the ways to bind a port below
// ip_unprivileged_port_start without running siteplex as root.
func privilegedPortFix(port int, other, off string) string {
	exe, err := os.Executable()
	if err != nil || !strings.Contains(filepath.Base(exe), "siteplex") {
		exe = "$(which siteplex)"
	}
	fix := fmt.Sprintf("one of: sudo setcap cap_net_bind_service=+ep %s; or sudo sysctl -w net.ipv4.ip_unprivileged_port_start=%d; or %s", exe, port, other)
	if off != "" {
		fix += "; or " + off
	}
	return fix
}

// unprivilegedPortStart reads net.ipv4.ip_unprivileged_port_start (0 when
// unknown).
func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// holder is the process listening on a port, as far as /proc shows it.
type holder struct {
	found bool // a listening socket was found in /proc/net
	pid   int  // 0 when its process is not visible
	comm  string
}

// portHolder finds who listens on TCP port: the socket's inode from
// /proc/net/tcp{,6}, then the process holding that inode among /proc/*/fd.
// Other users' processes are invisible without root.
func portHolder(port int) holder {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, ino := range listeningInodes(f, port) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return holder{}
	}
	h := holder{found: true}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return h
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				h.pid, h.comm = pid, strings.TrimSpace(string(comm))
				return h
			}
		}
	}
	return h
}

// listeningInodes returns the inodes of LISTEN sockets on port in a
// /proc/net/tcp-format file ("sl local_address rem_address st ... inode").
func listeningInodes(path string, port int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" { // 0A = TCP_LISTEN
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		b, err := hex.DecodeString(hexPort)
		if err != nil || len(b) != 2 || int(b[0])<<8|int(b[1]) != port {
			continue
		}
		out = append(out, fields[9])
	}
	return out
}
