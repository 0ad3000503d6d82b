package main

import "github.com/spf13/cobra"

func newCmdUse(f *Factory) *cobra.Command {
	return &cobra.Command{Use: "use", Short: "Force the SITE_ID (not built yet)", Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error { return errNotYet }}
}
