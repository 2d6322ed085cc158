// Package cli is drill's command line: one file per command, every command built from an injected
// Env so tests run commands in-process and read their output.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drillworks/drill/topology"
)

// Exit codes mean something (k6-style).
const (
	ExitOK      = 0 // success; a drill passed
	ExitFailed  = 1 // a drill ran and a check failed
	ExitUsage   = 2 // bad usage, bad topology or drill file: nothing was started
	ExitHarness = 3 // the harness or its infrastructure failed
)

// Env is everything a command touches outside itself.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error   { return &exitError{ExitUsage, err} }
func harnessErr(err error) error { return &exitError{ExitHarness, err} }

// Main runs drill with args and returns the exit code.
func Main(ctx context.Context, env Env, args []string) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	root := newRoot(env)
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageErr(err) })
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitHarness
	var ee *exitError
	var te *topology.Error
	var tl topology.ErrorList
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.As(err, &te), errors.As(err, &tl):
		code = ExitUsage
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "accepts "),
		strings.HasPrefix(err.Error(), "requires "), strings.HasPrefix(err.Error(), "unknown flag"):
		code = ExitUsage
	}
	fmt.Fprintln(env.Stderr, "drill:", err)
	return code
}

// globals are the flags every command shares.
type globals struct {
	env      Env
	topology string
	stateDir string
	logLevel string
	// output is text or json (-o): what commands that print a result print.
	output string
}

// Output formats.
const (
	outputText = "text"
	outputJSON = "json"
)

// asJSON reports whether the command should print its result as JSON (-o json).
func (g *globals) asJSON() bool { return g.output == outputJSON }

// progressOut is where a command's progress goes: standard output, or standard error with -o json
// (standard output then holds the result alone).
func (g *globals) progressOut() io.Writer {
	if g.asJSON() {
		return g.env.Stderr
	}
	return g.env.Stdout
}

// printJSON writes v as indented JSON on standard output.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRoot(env Env) *cobra.Command {
	g := &globals{env: env}
	root := &cobra.Command{
		Use:           "drill",
		Short:         "Failure drills for a multi-region web architecture",
		Long:          "drill brings up simulated regions (web tier, primary/replica database, GeoDNS, gossip health),\ninjects faults and measures failover and replication from the user's side.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.output != outputText && g.output != outputJSON {
				return usageErr(fmt.Errorf("-o %q: text or json", g.output))
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&g.output, "output", "o", outputText, "what a command that prints a result prints: text or json")
	root.PersistentFlags().StringVar(&g.topology, "topology", "", "topology YAML file, or a built-in topology: default (two regions) or cache (with a redis cache per region)")
	root.PersistentFlags().StringVar(&g.stateDir, "state-dir", "", "where run directories live (default $DRILL_STATE_DIR or ~/.local/state/drill)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(newUpCmd(g), newDownCmd(g), newStatusCmd(g), newKVCmd(g), newVersionCmd(g), newAgentCmd(g), newToxiproxyCmd(g), newDNSCmd(g),
		newComposeCmd(g), newRunCmd(g), newListCmd(g), newReportCmd(g), newCheckCmd(g), newRecoverCmd(g), newNftCmd(g), newImageCmd(g),
		newGamedayCmd(g), newHistoryCmd(g), newExploreCmd(g), newCacheCmd(g), newValidateCmd(g),
		newInjectCmd(g), newHealCmd(g), newFaultsCmd(g), newSchemaCmd(g))
	g.registerCompletions(root)
	return root
}

func (g *globals) logger() *slog.Logger { return g.loggerTo(g.env.Stderr) }

// loggerTo is the command's logger, writing to w.
func (g *globals) loggerTo(w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}

// loadTopology reads --topology (a file, or a built-in topology's name) or the embedded default;
// errors are usage errors (exit 2).
func (g *globals) loadTopology(sets []string) (*topology.Topology, error) {
	return g.loadTopologyOr("", sets)
}

// loadTopologyOr is loadTopology with fallback, a built-in topology's name, in place of the
// default when --topology is not given.
func (g *globals) loadTopologyOr(fallback string, sets []string) (*topology.Topology, error) {
	var t *topology.Topology
	name := g.topology
	if name == "" {
		name = fallback
	}
	if builtin, ok := topology.Builtin(name); ok && !strings.ContainsRune(name, os.PathSeparator) {
		t = builtin
	} else if name == "" {
		t = topology.Default()
	} else {
		var err error
		if t, err = topology.Load(name); err != nil {
			return nil, usageErr(err)
		}
	}
	for _, kv := range sets {
		k, v, err := topology.ParseSet(kv)
		if err != nil {
			return nil, usageErr(fmt.Errorf("--set %s: %w", kv, err))
		}
		if err := t.Set(k, v); err != nil {
			return nil, usageErr(fmt.Errorf("--set %s: %w", kv, err))
		}
	}
	return t, nil
}

// runDir is where a topology's cluster keeps its plan, data and logs.
// selected is the topology the command names (--topology, else the default) and its run
// directory.
func (g *globals) selected() (*topology.Topology, string, error) {
	t, err := g.loadTopology(nil)
	if err != nil {
		return nil, "", err
	}
	runDir, err := g.runDir(t)
	if err != nil {
		return nil, "", err
	}
	return t, runDir, nil
}

func (g *globals) runDir(t *topology.Topology) (string, error) {
	dir := g.stateDir
	if dir == "" {
		dir = g.env.Getenv("DRILL_STATE_DIR")
	}
	if dir == "" {
		if x := g.env.Getenv("XDG_STATE_HOME"); x != "" {
			dir = filepath.Join(x, "drill")
		} else {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", harnessErr(fmt.Errorf("find a state dir (set --state-dir): %w", err))
			}
			dir = filepath.Join(home, ".local", "state", "drill")
		}
	}
	return filepath.Abs(filepath.Join(dir, t.Name))
}
