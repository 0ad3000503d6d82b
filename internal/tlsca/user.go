package tlsca

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// User is the person siteplex works for: the process's own user, or — when
// siteplex runs as root through sudo — the user who ran sudo (SUDO_UID,
// SUDO_GID). The CA and the browser databases are theirs, so files
// siteplex creates for them are given to them (see Owner).
type User struct {
	Name string
	UID  int
	GID  int
	// Home is the user's home folder: $HOME for the process's own user,
	// the passwd entry for a sudo caller (sudo resets HOME to root's).
	Home string
	// Sudo is true when this process is root on behalf of SUDO_UID.
	Sudo bool
}

// CurrentUser returns the user siteplex works for. getenv reads the
// environment (os.Getenv in production).
func CurrentUser(getenv func(string) string) (User, error) {
	if os.Geteuid() == 0 {
		if s := getenv("SUDO_UID"); s != "" && s != "0" {
			uid, err := strconv.Atoi(s)
			if err != nil {
				return User{}, fmt.Errorf("tlsca: SUDO_UID=%q is not a number", s)
			}
			gid, err := strconv.Atoi(getenv("SUDO_GID"))
			if err != nil {
				gid = -1
			}
			u, err := user.LookupId(s)
			if err != nil {
				return User{}, fmt.Errorf("tlsca: the sudo caller (uid %d): %w", uid, err)
			}
			if gid < 0 {
				if gid, err = strconv.Atoi(u.Gid); err != nil {
					return User{}, fmt.Errorf("tlsca: the sudo caller's group %q is not a number", u.Gid)
				}
			}
			return User{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir, Sudo: true}, nil
		}
	}
	out := User{UID: os.Getuid(), GID: os.Getgid(), Home: getenv("HOME")}
	if u, err := user.LookupId(strconv.Itoa(out.UID)); err == nil {
		out.Name = u.Username
		if out.Home == "" {
			out.Home = u.HomeDir
		}
	} else {
		out.Name = strconv.Itoa(out.UID)
	}
	if out.Home == "" {
		return out, fmt.Errorf("tlsca: no home folder for uid %d: set HOME or SITEPLEX_CAROOT", out.UID)
	}
	return out, nil
}

// Owner is who files siteplex creates for u must belong to: nil when the
// process creates them as u anyway, u's ids when this is root through sudo.
func (u User) Owner() *Owner {
	if !u.Sudo {
		return nil
	}
	return &Owner{UID: u.UID, GID: u.GID}
}

// Owner names the uid and gid new files and folders are given to. A nil
// *Owner means "leave them to the process's own ids".
type Owner struct{ UID, GID int }

// Root returns the CA folder (CAROOT): $SITEPLEX_CAROOT when set (made
// absolute), else $XDG_DATA_HOME/siteplex/ca, else
// ~/.local/share/siteplex/ca, where ~ is u.Home. Through sudo,
// XDG_DATA_HOME is used only when it lies inside u.Home (sudo -E), so that
// root's own data folder is never picked. Relative XDG_DATA_HOME values are
// ignored, as the XDG spec says.
func Root(getenv func(string) string, u User) string {
	if d := getenv("SITEPLEX_CAROOT"); d != "" {
		if abs, err := filepath.Abs(d); err == nil {
			return abs
		}
		return d
	}
	data := getenv("XDG_DATA_HOME")
	if !filepath.IsAbs(data) || u.Sudo && !within(data, u.Home) {
		data = filepath.Join(u.Home, ".local", "share")
	}
	return filepath.Join(data, "siteplex", "ca")
}

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
