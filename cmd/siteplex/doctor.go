package main

import "github.com/spf13/cobra"

func newCmdDoctor(f *Factory) *cobra.Command {
	return &cobra.Command{Use: "doctor", Short: "Check the set-up (not built yet)", Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error { return errNotYet }}
}
