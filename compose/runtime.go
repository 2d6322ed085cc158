// Package compose brings a topology to life and injects faults into it. A Runtime (one package per
// runtime: compose/local for child processes, compose/docker for containers) starts and stops
// nodes; the code here works over any runtime: waiting for convergence, status, and the network
// faults built on the WAN links (toxiproxy) and the agents' gossip fault transport.
package compose

import (
	"context"
	"errors"

	"github.com/drillworks/drill/topology"
)

// Runtime runs the nodes of one plan. It is deliberately small (like kind's provider): everything
// that can be done through the nodes' own endpoints lives outside it.
type Runtime interface {
	// Name is "local" or "docker".
	Name() string
	// Up starts every node of the plan; it returns once all are started (not yet converged).
	Up(ctx context.Context, plan *topology.Plan) error
	// Down stops every node and removes what Up created; it succeeds when nothing is left.
	Down(ctx context.Context) error
	// Nodes reports every node's process state.
	Nodes(ctx context.Context) ([]NodeState, error)
	// Kill stops a node abruptly (SIGKILL).
	Kill(ctx context.Context, node string) error
	// Freeze suspends a node (SIGSTOP / pause); it keeps its sockets but answers nothing.
	Freeze(ctx context.Context, node string) error
	// Thaw resumes a frozen node.
	Thaw(ctx context.Context, node string) error
	// Start starts a stopped or killed node again with its data.
	Start(ctx context.Context, node string) error
	// Endpoint is the address at which drill reaches a node's port.
	Endpoint(node string, port int) (string, error)
}

// NodeState is a node's process state as its runtime sees it.
type NodeState struct {
	// Name is the node's name.
	Name string `json:"name"`
	// Running is true while the process or container runs (frozen counts as running).
	Running bool `json:"running"`
	// Frozen is true while the node is suspended.
	Frozen bool `json:"frozen"`
	// PID is the process id (local runtime).
	PID int `json:"pid,omitempty"`
	// ID is the container id (docker runtime).
	ID string `json:"id,omitempty"`
}

// ErrNotUp is returned when no cluster is running for a topology.
var ErrNotUp = errors.New("no cluster is up for this topology (run `drill up` first)")

// ErrAlreadyUp is returned by Up when a cluster of the same topology is already running.
var ErrAlreadyUp = errors.New("a cluster of this topology is already up (run `drill down` first)")
