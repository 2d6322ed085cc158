package fault

// KindFreeze suspends a node, or every node of a region, until undone: it keeps its sockets but
// answers nothing (SIGSTOP, or a paused container).
const KindFreeze Kind = "freeze"

func init() {
	register(processKind{kind: KindFreeze, action: ActionFreeze,
		summary: "suspend a node or every node of a region (it keeps its sockets, answers nothing) until healed"})
}
