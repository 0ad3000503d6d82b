package safefile

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// aclBlob is a system.posix_acl_access value: owner rw, user 1234 r,
// group r, mask r, other r (mode 0644).
func aclBlob() []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint32(2)) // version
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, 6, ^uint32(0)}, {0x02, 4, 1234}, {0x04, 4, ^uint32(0)}, {0x10, 4, ^uint32(0)}, {0x20, 4, ^uint32(0)}} {
		binary.Write(&b, binary.LittleEndian, e)
	}
	return b.Bytes()
}

// TestKeepsExtendedAttributes: the renamed-in file carries the old one's
// extended attributes (SELinux labels, ACLs and user attributes are all
// extended attributes; this machine has no SELinux, so an ACL, a user and,
// as root, a trusted attribute stand in).
func TestKeepsExtendedAttributes(t *testing.T) {
	p, o := setup(t, "127.0.0.1 localhost\n")
	attrs := map[string][]byte{"user.siteplex-test": []byte("kept"), "system.posix_acl_access": aclBlob()}
	if os.Geteuid() == 0 {
		attrs["trusted.siteplex-test"] = []byte("root only")
	}
	for name, val := range attrs {
		if err := unix.Setxattr(p, name, val, 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				t.Skipf("the file system of %s has no %s attributes: %v", p, name, err)
			}
			t.Fatalf("setting %s: %v", name, err)
		}
	}
	before := ino(t, p)
	res, err := Update(context.Background(), p, o, set("127.0.0.1 localhost\n127.0.0.1 a.test\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res.InPlace || ino(t, p) == before {
		t.Fatal("the file was not replaced by rename: this test checks the copy")
	}
	for name, want := range attrs {
		got, err := xattr(p, name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s after apply = %q, %v; want %q", name, got, err, want)
		}
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Errorf("mode after apply %v, want -rw-r--r--", st.Mode())
	}
}
