package fault

import (
	"github.com/drillworks/drill/agents/disk"
	"github.com/drillworks/drill/topology"
)

// KindDiskStall hangs a db node's disk until healed, e.g. `inject: {fault: disk-stall, target:
// primary}`: every fsync of its log waits, so nothing it writes becomes durable or acknowledged,
// while the process itself runs and answers. Emulated at the node's log on both runtimes (package
// agents/disk).
const KindDiskStall Kind = "disk-stall"

func init() { register(diskStall{dbNodeKind{kind: KindDiskStall}}) }

type diskStall struct{ dbNodeKind }

func (diskStall) Summary() string {
	return "hang a db node's disk (every fsync of its log waits) until healed"
}

func (diskStall) Effects(f Fault, _ Env) Effects {
	e := Effects{Disk: map[string]disk.State{}}
	for _, n := range f.Resolved {
		e.Disk[n] = disk.State{Stall: true}
	}
	return e
}

func (diskStall) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-disk-stall", Kind: KindDiskStall, Node: exampleDBNode(t)}
}
