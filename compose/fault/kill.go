package fault

// KindKill kills a node, or every node of a region, with SIGKILL until undone (undo starts them
// again with their data).
const KindKill Kind = "kill"

func init() {
	register(processKind{kind: KindKill, action: ActionKill,
		summary: "kill a node or every node of a region (SIGKILL) until healed, then start it again with its data"})
}
