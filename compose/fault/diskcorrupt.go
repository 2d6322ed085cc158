package fault

import "github.com/drillworks/drill/topology"

// KindDiskCorrupt damages a record in the middle of a db node's log on disk and restarts the node,
// e.g. `inject: {fault: disk-corrupt, target: eu-west-db-1}`: one bit flipped in the file (real on
// both runtimes), found when the node reads its log at start. An instant fault: nothing to undo.
const KindDiskCorrupt Kind = "disk-corrupt"

func init() { register(diskCorrupt{dbNodeKind{kind: KindDiskCorrupt}}) }

type diskCorrupt struct{ dbNodeKind }

func (diskCorrupt) Summary() string {
	return "flip a bit in a record in the middle of a db node's log on disk, then restart the node"
}

func (diskCorrupt) Instant() bool { return true }

func (diskCorrupt) Effects(f Fault, _ Env) Effects {
	return Effects{Corrupt: f.Resolved, Process: Process{Action: ActionRestart, Nodes: f.Resolved}}
}

func (diskCorrupt) Example(t *topology.Topology) Fault {
	return Fault{ID: "example-disk-corrupt", Kind: KindDiskCorrupt, Node: exampleDBNode(t)}
}
