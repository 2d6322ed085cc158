package gossip

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// Rules are the network faults a node applies to its own gossip traffic. They are keyed by the
// peer's address, and a rule installed on one side alone already cuts or slows the link: a Drop
// prefix black-holes traffic in both directions, DropIn and DropOut one direction of packets, a
// Delay slows what this node sends, a Loss drops a share of the packets both ways.
type Rules struct {
	// Drop black-holes every packet and stream to or from an address in one of these prefixes.
	Drop []netip.Prefix `json:"drop"`
	// DropIn drops the packets that arrive from these prefixes; DropOut the packets sent to them.
	// A stream (TCP) needs both directions, so either cuts streams with the prefix entirely, as a
	// one-way packet loss would stop a TCP handshake.
	DropIn  []netip.Prefix `json:"drop_in,omitempty"`
	DropOut []netip.Prefix `json:"drop_out,omitempty"`
	// Delays add one-way latency to what this node sends to a prefix (packets, stream dials and
	// stream writes). Install the same delay on both sides for a symmetric RTT.
	Delays []Delay `json:"delays"`
	// Loss drops a random share of the packets (UDP only, not streams: a real network's TCP
	// would retransmit) to or from a prefix, both directions, each packet drawn once per
	// matching rule. Install it on one side of a link only, or packets meet two draws.
	Loss []Loss `json:"loss,omitempty"`
}

// Loss drops Percent % of the packets exchanged with Prefix, at random:
//
//	{"prefix":"127.77.2.0/24","percent":30}
type Loss struct {
	// Prefix is the peer address range the loss applies to.
	Prefix netip.Prefix `json:"prefix"`
	// Percent is the share of packets dropped, 1 to 100 (Set leaves out rules of 0 or less and
	// caps the rest at 100).
	Percent int `json:"percent"`
}

// Delay is one-way latency for traffic sent to Prefix: each packet is delayed by
// Latency ± a uniformly random Jitter (never below zero).
//
// In JSON, Latency and Jitter are Go duration strings ("300ms", "1.5s"); a bare number is read
// as milliseconds. They are always written as strings:
//
//	{"prefix":"127.77.2.0/24","latency":"300ms","jitter":"20ms"}
type Delay struct {
	// Prefix is the peer address range the latency applies to.
	Prefix netip.Prefix
	// Latency is the mean one-way delay.
	Latency time.Duration
	// Jitter is the maximum random deviation from Latency, either way.
	Jitter time.Duration
}

// delayJSON is Delay's wire form.
type delayJSON struct {
	Prefix  netip.Prefix    `json:"prefix"`
	Latency json.RawMessage `json:"latency,omitempty"`
	Jitter  json.RawMessage `json:"jitter,omitempty"`
}

// MarshalJSON writes durations as Go duration strings.
func (d Delay) MarshalJSON() ([]byte, error) {
	lat, _ := json.Marshal(d.Latency.String())
	jit, _ := json.Marshal(d.Jitter.String())
	return json.Marshal(delayJSON{Prefix: d.Prefix, Latency: lat, Jitter: jit})
}

// UnmarshalJSON accepts durations as strings ("300ms") or as numbers of milliseconds.
func (d *Delay) UnmarshalJSON(b []byte) error {
	var raw delayJSON
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("decode delay: %w", err)
	}
	lat, err := parseJSONDuration(raw.Latency)
	if err != nil {
		return fmt.Errorf("delay latency: %w", err)
	}
	jit, err := parseJSONDuration(raw.Jitter)
	if err != nil {
		return fmt.Errorf("delay jitter: %w", err)
	}
	*d = Delay{Prefix: raw.Prefix, Latency: lat, Jitter: jit}
	return nil
}

// parseJSONDuration reads "300ms" or 300 (milliseconds); empty or null is zero.
func parseJSONDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("parse %q: %w", s, err)
		}
		return d, nil
	}
	ms, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, fmt.Errorf("want a duration string or milliseconds, got %s", raw)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// Faults holds the fault rules of one node's gossip transport. It is safe for concurrent use and
// its zero value has no rules; Set may be called before or after the node starts and takes
// effect for the next packet or stream.
type Faults struct {
	// rules is replaced wholesale by Set, so the per-packet path reads it without locks.
	rules atomic.Pointer[Rules]
}

// NewFaults returns a Faults holding rules.
func NewFaults(rules Rules) *Faults {
	f := &Faults{}
	f.Set(rules)
	return f
}

// Set replaces all rules. Prefixes are normalised to their masked form; negative durations
// count as zero.
func (f *Faults) Set(r Rules) {
	c := Rules{Drop: masked(r.Drop), DropIn: masked(r.DropIn), DropOut: masked(r.DropOut)}
	for _, d := range r.Delays {
		if !d.Prefix.IsValid() {
			continue
		}
		d.Prefix = d.Prefix.Masked()
		d.Latency = max(d.Latency, 0)
		d.Jitter = max(d.Jitter, 0)
		c.Delays = append(c.Delays, d)
	}
	for _, l := range r.Loss {
		if !l.Prefix.IsValid() || l.Percent <= 0 {
			continue
		}
		c.Loss = append(c.Loss, Loss{Prefix: l.Prefix.Masked(), Percent: min(l.Percent, 100)})
	}
	f.rules.Store(&c)
}

// masked keeps the valid prefixes, in masked form.
func masked(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.IsValid() {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Rules returns a copy of the current rules.
func (f *Faults) Rules() Rules {
	r := f.rules.Load()
	if r == nil {
		return Rules{}
	}
	return Rules{Drop: slices.Clone(r.Drop), DropIn: slices.Clone(r.DropIn), DropOut: slices.Clone(r.DropOut),
		Delays: slices.Clone(r.Delays), Loss: slices.Clone(r.Loss)}
}

// Empty reports whether the rules do nothing.
func (r Rules) Empty() bool {
	return len(r.Drop)+len(r.DropIn)+len(r.DropOut)+len(r.Delays)+len(r.Loss) == 0
}

// Clear removes every rule.
func (f *Faults) Clear() { f.rules.Store(&Rules{}) }

// Blocks reports whether a conversation with addr is cut: every packet to or from it is dropped,
// or one direction is (a stream, or a request and its answer, needs both).
func (f *Faults) Blocks(addr netip.Addr) bool {
	r := f.rules.Load()
	return r != nil && anyContains(addr.Unmap(), r.Drop, r.DropIn, r.DropOut)
}

// BlocksOut reports whether a packet sent to addr is dropped.
func (f *Faults) BlocksOut(addr netip.Addr) bool {
	r := f.rules.Load()
	return r != nil && anyContains(addr.Unmap(), r.Drop, r.DropOut)
}

// BlocksIn reports whether a packet arriving from addr is dropped.
func (f *Faults) BlocksIn(addr netip.Addr) bool {
	r := f.rules.Load()
	return r != nil && anyContains(addr.Unmap(), r.Drop, r.DropIn)
}

// anyContains reports whether a prefix of any list contains addr.
func anyContains(addr netip.Addr, lists ...[]netip.Prefix) bool {
	for _, ps := range lists {
		for _, p := range ps {
			if p.Contains(addr) {
				return true
			}
		}
	}
	return false
}

// Loses draws whether one packet to or from addr is lost: every matching Loss rule drops it with
// its own probability.
func (f *Faults) Loses(addr netip.Addr) bool {
	r := f.rules.Load()
	if r == nil || len(r.Loss) == 0 {
		return false
	}
	addr = addr.Unmap()
	for _, l := range r.Loss {
		if l.Prefix.Contains(addr) && rand.IntN(100) < l.Percent {
			return true
		}
	}
	return false
}

// DelayFor returns the delay rule for traffic sent to addr: the one with the longest matching
// prefix, the first listed on a tie.
func (f *Faults) DelayFor(addr netip.Addr) (Delay, bool) {
	r := f.rules.Load()
	if r == nil {
		return Delay{}, false
	}
	addr = addr.Unmap()
	best, found := Delay{}, false
	for _, d := range r.Delays {
		if d.Prefix.Contains(addr) && (!found || d.Prefix.Bits() > best.Prefix.Bits()) {
			best, found = d, true
		}
	}
	return best, found
}

// sample draws one delay: Latency ± uniform Jitter, at least zero.
func (d Delay) sample() time.Duration {
	v := d.Latency
	if d.Jitter > 0 {
		v += time.Duration(rand.Int64N(int64(2*d.Jitter)+1)) - d.Jitter
	}
	return max(v, 0)
}
