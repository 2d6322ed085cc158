// Package runtime is the runtime layer: the small interface every way of running nodes implements
// (compose/local for child processes, compose/docker for containers), what a runtime declares
// about itself (capabilities, address layout, plan path) and the descriptor through which it is
// registered (compose.Runtimes). Everything that can be done through the nodes' own endpoints
// (status, faults) lives outside it, in compose/observe and compose/inject.
package runtime

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/topology"
)

// Runtime runs the nodes of one plan. It is deliberately small (like kind's provider).
type Runtime interface {
	// Name is the runtime's registered name.
	Name() string
	// Capabilities says what the runtime can do beyond the interface.
	Capabilities() Capabilities
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

// Capabilities are what a runtime declares about itself.
type Capabilities struct {
	// PacketFaults: the runtime drops packets in the nodes' kernels (it implements
	// PacketFaulter), so network faults reach every packet, not just the WAN links and gossip.
	PacketFaults bool
	// ClientsNeedECS: simulated users on the host cannot send from their region's client subnet,
	// so they say where they are with an EDNS Client Subnet option.
	ClientsNeedECS bool
	// NodeImages: nodes run from an image the runtime builds (`drill image build`).
	NodeImages bool
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

// PacketFaulter drops packets in nodes' kernels, under rule sets named by fault id.
type PacketFaulter interface {
	// ApplyPacketRules installs rule set id on each named node (replacing it if present). Packets
	// within the node's own site and drill's own observation and control traffic from the host
	// are never dropped, so drill can still see and heal what it cut off. Nodes that are not
	// running are skipped (the injector re-applies their rules when they start).
	ApplyPacketRules(ctx context.Context, id string, rules map[string]fault.PacketRule) error
	// RemovePacketRules removes rule set id from the named nodes; absent rules and stopped nodes
	// are fine.
	RemovePacketRules(ctx context.Context, id string, nodes []string) error
	// PacketRules lists the drill rule sets present on every running node: node → rule set names.
	PacketRules(ctx context.Context) (map[string][]string, error)
	// FlushPacketRules removes every drill rule set from every running node, whoever added it.
	FlushPacketRules(ctx context.Context) error
}

// ImageBuilder is a runtime whose nodes run from an image it makes (Capabilities.NodeImages).
type ImageBuilder interface {
	// Image makes sure the node image exists and returns its reference and whether it was made
	// now.
	Image(ctx context.Context) (ref string, built bool, err error)
}

// Config is what every runtime is made from.
type Config struct {
	// RunDir holds the plan, node data and logs.
	RunDir string
	// Binary is the drill binary the nodes run; empty = this process's executable (a runtime may
	// derive another from it).
	Binary string
	// Topology names the topology whose leftovers Down removes when the run directory has no plan
	// (a crashed run); empty = the plan's.
	Topology string
	// Logger receives the runtime's logs.
	Logger *slog.Logger
}

// Descriptor registers a runtime: its name, what it can do, how to make one and how it lays out
// a plan. compose.Runtimes lists the registered ones.
type Descriptor struct {
	// Name is what --runtime takes.
	Name string
	// Summary is one line for help texts.
	Summary string
	// Capabilities are the runtime's capabilities.
	Capabilities Capabilities
	// New makes the runtime for one run directory (it does not start anything).
	New func(cfg Config) (Runtime, error)
	// NewPlan lays a topology out in the runtime's address space.
	NewPlan func(t *topology.Topology, runDir string) (*topology.Plan, error)
	// PlanPath is where the runtime keeps a run directory's plan.
	PlanPath func(runDir string) string
	// Available reports whether the runtime can run here now, within timeout (nil: always).
	// --runtime auto picks the first available runtime in registration order.
	Available func(ctx context.Context, timeout time.Duration) error
	// Capacity is how many nodes the runtime runs on this host with the cluster converging in
	// time, and the measurement behind that number (nil: no known ceiling). `up` refuses a
	// larger plan before starting anything, unless told to try anyway.
	Capacity func() (nodes int, basis string)
}

// PlanPath is the plan file of a run directory, where the built-in runtimes keep it.
func PlanPath(runDir string) string { return filepath.Join(runDir, "plan.json") }

// ErrNotUp is returned when no cluster is running for a topology.
var ErrNotUp = errors.New("no cluster is up for this topology (run `drill up` first)")

// ErrAlreadyUp is returned by Up when a cluster of the same topology is already running.
var ErrAlreadyUp = errors.New("a cluster of this topology is already up (run `drill down` first)")
