package main

import "github.com/spf13/cobra"

func newCmdDomains(f *Factory) *cobra.Command {
	return &cobra.Command{Use: "domains", Short: "Rewrite or restore django_site domains (not built yet)", Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error { return errNotYet }}
}
