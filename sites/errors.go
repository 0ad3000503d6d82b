package sites

import (
	"errors"
	"fmt"
)

// UsageError marks an error caused by what the user typed or configured
// (an unknown site, a bad URL or format). The CLI maps it to exit status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// IsUsage reports whether err is (or wraps) a *UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// ComposeHostError says a database URL names a docker-compose service
// (database_default, db, postgres, ...) that siteplex could not map to a
// container: Docker is not used, does not answer (Err), or runs no such
// container (Err nil). ResolveDB returns it; doctor turns it into the fix.
type ComposeHostError struct {
	// Source is where the URL came from; Host the service name; Driver and
	// Database the URL's.
	Source, Host, Database string
	Driver                 Driver
	// NoDocker is true when siteplex was not given Docker at all.
	NoDocker bool
	// Err is Docker's error (nil when Docker answered but no container
	// runs).
	Err error
}

func (e *ComposeHostError) Error() string {
	switch {
	case e.NoDocker:
		return fmt.Sprintf("%s names host %q, a docker-compose service: siteplex needs Docker to reach it, or publish the port and use --db %s://...@127.0.0.1:PORT/%s", e.Source, e.Host, e.Driver, e.Database)
	case e.Err != nil:
		return fmt.Sprintf("%s names host %q: %v", e.Source, e.Host, e.Err)
	}
	return fmt.Sprintf("%s names host %q, but no running docker-compose database container of this project was found: start it with `docker compose up -d %s`", e.Source, e.Host, e.Host)
}

func (e *ComposeHostError) Unwrap() error { return e.Err }
