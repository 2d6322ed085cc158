package fault

import (
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/topology"
)

// KindDiskFull fills a db node's disk until healed, e.g. `inject: {fault: disk-full, target:
// us-east-db-1}`: every write of its log fails with ENOSPC, after which the node refuses writes
// and never leads again until restarted. Healing frees the disk and restarts the node, as an
// operator would. Emulated at the node's log on both runtimes (package agents/disk says why).
const KindDiskFull Kind = "disk-full"

func init() { register(diskFull{dbNodeKind{kind: KindDiskFull}}) }

type diskFull struct{ dbNodeKind }

func (diskFull) Summary() string {
	return "fill a db node's disk (its log's writes fail with ENOSPC) until healed, then restart it"
}

func (diskFull) Effects(f Fault, _ Env) Effects {
	e := Effects{Disk: map[string]disk.State{}, Process: Process{Action: ActionRestartOnHeal, Nodes: f.Resolved}}
	for _, n := range f.Resolved {
		e.Disk[n] = disk.State{Full: true}
	}
	return e
}

func (diskFull) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-disk-full", Kind: KindDiskFull, Node: exampleDBNode(t)}
}
