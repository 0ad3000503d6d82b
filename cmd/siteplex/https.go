package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/internal/tlsca"
	"github.com/siteplex/siteplex/sites"
)

// httpsValue appends to engineFlags.HTTPS and marks it set (--https ADDR,
// repeatable, or --https off).
type httpsValue struct{ ef *engineFlags }

func (h httpsValue) String() string { return strings.Join(h.ef.HTTPS, ",") }
func (h httpsValue) Set(s string) error {
	h.ef.HTTPS = append(h.ef.HTTPS, strings.TrimSpace(s))
	h.ef.httpsSet = true
	return nil
}
func (h httpsValue) Type() string { return "addr|off" }

// optBool is a boolean flag (--preload, --https-redirect, and their
// =false forms) that knows whether it was given.
type optBool struct {
	v   bool
	set bool
}

func (o *optBool) String() string { return strconv.FormatBool(o.v) }
func (o *optBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	o.v, o.set = v, true
	return nil
}
func (o *optBool) Type() string     { return "bool" }
func (o *optBool) IsBoolFlag() bool { return true }

// localCA finds the user's CAROOT and loads the CA in it. It returns
// tlsca.ErrNoCA (wrapped) when there is none, or no home folder to look
// in.
func (f *Factory) localCA() (*tlsca.CA, tlsca.User, error) {
	getenv := f.Opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	u, err := tlsca.CurrentUser(getenv)
	if err != nil && getenv("SITEPLEX_CAROOT") == "" {
		return nil, u, fmt.Errorf("%w (%v)", tlsca.ErrNoCA, err)
	}
	ca, err := tlsca.Load(tlsca.Root(getenv, u))
	return ca, u, err
}

// caPermits is the predicate of the names the user's CA may sign, for
// the URLs siteplex shows: nil (every name) when there is no CA, which
// only matters when an engine serves HTTPS anyway.
func (f *Factory) caPermits() func(string) bool {
	ca, _, err := f.localCA()
	if err != nil {
		return nil
	}
	return ca.Permits
}

// httpsConfig resolves --https, --https-redirect and their siteplex.toml
// keys (docs/https.md, "Serving HTTPS"): nil when HTTPS is off.
//   - --https off (or https = "off"): off.
//   - --https ADDR… (or https = [...]): those addresses; the CA must exist.
//   - neither: on, on the default addresses, when the CA exists; off
//     when it does not.
//
// A CA that exists but does not load is an error, never a silent
// fallback to plain HTTP.
func (f *Factory) httpsConfig(c *sites.Config) (*devproxy.HTTPSConfig, error) {
	ef := engineFlagsOf(f)
	addrs, off, from := c.HTTPS.Addrs, c.HTTPS.Off, "https in "+configName(c)
	if ef.httpsSet {
		addrs, off, from = nil, false, "--https"
		for _, a := range ef.HTTPS {
			if strings.EqualFold(a, "off") {
				off = true
			} else {
				addrs = append(addrs, a)
			}
		}
		if off && len(addrs) > 0 {
			return nil, sites.Usagef("--https off cannot go with --https addresses (%s)", strings.Join(addrs, ", "))
		}
	}
	for _, a := range addrs {
		if !strings.Contains(a, ":") {
			return nil, sites.Usagef("%s: address %q needs a port, like 127.0.0.1:8443 or :8443", from, a)
		}
	}
	redirect, redirectFrom := false, ""
	switch {
	case ef.HTTPSRedirect.set:
		redirect, redirectFrom = ef.HTTPSRedirect.v, "--https-redirect"
	case c.HTTPSRedirect != nil && !(off && ef.httpsSet):
		// (--https off on the command line turns the config's redirect
		// off with HTTPS for this run.)
		redirect, redirectFrom = *c.HTTPSRedirect, "https_redirect in "+configName(c)
	}
	if off {
		if redirect {
			return nil, sites.Usagef("%s needs HTTPS, which %s turns off", redirectFrom, from)
		}
		return nil, nil
	}
	ca, u, err := f.localCA()
	switch {
	case errors.Is(err, tlsca.ErrNoCA):
		if len(addrs) > 0 {
			return nil, fmt.Errorf("%s needs the local CA: %w", from, err)
		}
		if redirect {
			return nil, fmt.Errorf("%s needs HTTPS, which is off without the local CA: %w", redirectFrom, err)
		}
		return nil, nil
	case err != nil && len(addrs) > 0:
		return nil, fmt.Errorf("%s: %w", from, err)
	case err != nil:
		return nil, fmt.Errorf("%w\n(HTTPS is on by default once the local CA exists; --https off serves plain HTTP only)", err)
	}
	return &devproxy.HTTPSConfig{CA: ca, Owner: u.Owner(), Listen: addrs, Redirect: redirect}, nil
}

// configName names the config file for messages.
func configName(c *sites.Config) string {
	if c != nil && c.Path != "" {
		return c.Path
	}
	return "siteplex.toml"
}
