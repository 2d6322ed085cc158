// Command drill is the chaos and failure-drill harness for a multi-region web architecture. The same
// binary is the in-node agent (`drill agent`).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/drillworks/drill/cmd/drill/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}
