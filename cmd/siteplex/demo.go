package main

import "github.com/spf13/cobra"

func newCmdDemo(f *Factory) *cobra.Command {
	return &cobra.Command{Use: "demo", Short: "Run the UI over a throw-away demo project (not built yet)", Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error { return errNotYet }}
}
