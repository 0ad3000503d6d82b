package main

import "github.com/spf13/cobra"

func newCmdHosts(f *Factory) *cobra.Command {
	return &cobra.Command{Use: "hosts", Short: "Manage the sites' /etc/hosts entries (not built yet)", Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error { return errNotYet }}
}
