//go:build !linux

package preload

import (
	"context"
	"runtime"
	"time"
)

// Parent is a running warm parent; on this system none can run.
type Parent struct{}

// Child is one site's process forked from a Parent; never made here.
type Child struct{}

// StartParent returns Unavailable: preloading needs Linux (a parent-death
// signal for the forked children, pidfds, SOCK_SEQPACKET).
func StartParent(ctx context.Context, spec ParentSpec) (*Parent, error) {
	return nil, &Unavailable{Reason: "preload needs Linux (this is " + runtime.GOOS + ")"}
}

func (p *Parent) PID() int                                                 { return 0 }
func (p *Parent) Info() Info                                               { return Info{} }
func (p *Parent) Done() <-chan struct{}                                    { return nil }
func (p *Parent) Err() error                                               { return ErrParentGone }
func (p *Parent) Children() []*Child                                       { return nil }
func (p *Parent) Fork(ctx context.Context, spec ChildSpec) (*Child, error) { return nil, ErrParentGone }
func (p *Parent) Stop(ctx context.Context, grace time.Duration) error      { return nil }
func (p *Parent) Close() error                                             { return nil }

func (c *Child) PID() int                                            { return 0 }
func (c *Child) Addr() string                                        { return "" }
func (c *Child) Done() <-chan struct{}                               { return nil }
func (c *Child) Wait() (int, error)                                  { return -1, ErrParentGone }
func (c *Child) Stop(ctx context.Context, grace time.Duration) error { return nil }
