package explore

import "time"

// minFor is the shortest a shrunk fault lasts: shorter than the gossip and failover timers react
// to, so halving below it would only swap one failure for none.
const minFor = 300 * time.Millisecond

// Shrink returns a minimal schedule that still fails: delta debugging (Zeller and Hildebrandt's
// ddmin) over its faults, then each remaining fault moved to the start and its duration halved
// while the schedule still fails. stillFails runs a candidate; a run that cannot tell (an
// invalid run) counts as not failing, so what is kept has failed every time it was tried. A
// shorter timing must fail twice in a row: halving walks towards the edge where the design just
// copes, and a minimal drill that fails only now and then there is a poor reproduction. A fault
// and its heal are removed together, so every candidate is a well-formed schedule.
func Shrink(s Schedule, stillFails func(Schedule) bool) Schedule {
	failsTwice := func(c Schedule) bool { return stillFails(c) && stillFails(c) }
	with := func(idx []int) Schedule {
		c := Schedule{Seed: s.Seed}
		for _, i := range idx {
			c.Episodes = append(c.Episodes, s.Episodes[i])
		}
		return c
	}
	idx := make([]int, len(s.Episodes))
	for i := range idx {
		idx[i] = i
	}
	idx = ddmin(idx, func(c []int) bool { return stillFails(with(c)) })
	cur := with(idx)

	// Then the timing: everything earlier by the first fault's start (the order and gaps kept),
	// and each fault shorter.
	if first := cur.Episodes[0].At; first > 0 {
		c := clone(cur)
		for j := range c.Episodes {
			c.Episodes[j].At -= first
		}
		if failsTwice(c) {
			cur = c
		}
	}
	for i := range cur.Episodes {
		if cur.Episodes[i].Flaps > 1 { // once may be enough
			c := clone(cur)
			c.Episodes[i].Flaps, c.Episodes[i].Off = 0, 0
			if failsTwice(c) {
				cur = c
			}
		}
		for cur.Episodes[i].For/2 >= minFor {
			c := clone(cur)
			c.Episodes[i].For = round(c.Episodes[i].For / 2)
			if !failsTwice(c) {
				break
			}
			cur = c
		}
	}
	return cur
}

// ddmin is the minimizing delta-debugging algorithm over a list of items: it returns a subset
// for which fails holds and from which no single chunk at the final granularity can be removed
// (1-minimal when the granularity reached single items). fails(items) is assumed true.
func ddmin(items []int, fails func([]int) bool) []int {
	n := 2
	for len(items) >= 2 {
		chunks := split(items, n)
		reduced := false
		for _, c := range chunks { // a chunk alone
			if len(c) < len(items) && fails(c) {
				items, n, reduced = c, 2, true
				break
			}
		}
		if !reduced {
			for i := range chunks { // everything but a chunk
				comp := complement(chunks, i)
				if len(comp) > 0 && fails(comp) {
					items, n, reduced = comp, max(n-1, 2), true
					break
				}
			}
		}
		if !reduced {
			if n >= len(items) {
				break
			}
			n = min(2*n, len(items))
		}
	}
	return items
}

// split cuts items into n chunks of nearly equal size.
func split(items []int, n int) [][]int {
	var out [][]int
	start := 0
	for i := range n {
		end := start + (len(items)-start)/(n-i)
		if end > start {
			out = append(out, items[start:end])
		}
		start = end
	}
	return out
}

// complement is every chunk but chunks[skip], in order.
func complement(chunks [][]int, skip int) []int {
	var out []int
	for i, c := range chunks {
		if i != skip {
			out = append(out, c...)
		}
	}
	return out
}

func clone(s Schedule) Schedule {
	c := s
	c.Episodes = append([]Episode(nil), s.Episodes...)
	return c
}
