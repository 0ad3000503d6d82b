package main

import (
	"errors"

	"github.com/spf13/cobra"
)

var errNotYet = errors.New("not built yet")

func newCmdServe(f *Factory) *cobra.Command {
	return &cobra.Command{Use: "serve", Short: "Run the proxy and the site processes headless", Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error { return errNotYet }}
}

func newCmdDemoSite(f *Factory) *cobra.Command {
	return &cobra.Command{Use: "demo-site", Short: "A tiny built-in site server", Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error { return errNotYet }}
}

// addEngineFlags adds the flags of serve to root (the UI takes them too).
func addEngineFlags(root *cobra.Command, f *Factory) {}
