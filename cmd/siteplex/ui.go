package main

import "github.com/spf13/cobra"

func newCmdUI(f *Factory) *cobra.Command {
	return &cobra.Command{Use: "ui", Short: "Open the terminal UI (the default command)", Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error { return runUI(cmd, f, args) }}
}

func runUI(cmd *cobra.Command, f *Factory, args []string) error { return errNotYet }
