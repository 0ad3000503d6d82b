package sites

import (
	"context"
	"net"
	"time"
)

// resolves reports whether host resolves through the system resolver
// within a short time.
func resolves(ctx context.Context, host string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	return err == nil && len(addrs) > 0
}
