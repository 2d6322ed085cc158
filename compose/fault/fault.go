// Package fault is drill's fault vocabulary: the kinds of fault drill can inject, the fields and
// limits each takes, and what each does to the layers that carry faults (WAN toxics, kernel packet
// rules, gossip fault rules, process operations). It is a leaf: it knows the topology and nothing
// that runs, so drill files, histories, checkers and reports read it without linking the injector.
//
// Each kind is one file (blackhole.go, partition.go, ...) holding a Descriptor that registers
// itself at init; the registry is written only then and read-only afterwards. A new kind is one
// file and its test: the drill-file parser, the injector, the history and the reports all work
// from the descriptors.
package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/drillworks/drill/topology"
)

// Kind names a kind of fault, as drill files, the ledger and the history write it.
type Kind string

// Fault is one fault to inject. Its JSON form is what the fault ledger records.
type Fault struct {
	// ID names the fault, unique among active faults, e.g. "blackhole:us-east".
	ID string `json:"id"`
	// Kind is a registered kind.
	Kind Kind `json:"kind"`
	// Region is the target region (the kind's Targets say what it means).
	Region string `json:"region,omitempty"`
	// Regions are two or more sites (regions, or "witness") the fault acts between.
	Regions []string `json:"regions,omitempty"`
	// Node is the target node.
	Node string `json:"node,omitempty"`
	// Params are the kind's own settings by name, each in its canonical text form ("150ms", "30").
	Params Params `json:"params,omitempty"`
	// Resolved is what the fault acted on, filled in by the injector before it acts: the node
	// killed by kill-primary, the nodes of a region fault.
	Resolved []string `json:"resolved,omitempty"`
}

// Clone is a deep copy (faults are handed out; holders' copies must not change).
func (f Fault) Clone() Fault {
	f.Regions = slices.Clone(f.Regions)
	f.Resolved = slices.Clone(f.Resolved)
	if f.Params != nil {
		p := make(Params, len(f.Params))
		for k, v := range f.Params {
			p[k] = v
		}
		f.Params = p
	}
	return f
}

// TargetPrimary, as a fault's node, means whichever db node is the primary when the fault is
// applied (a failover moves the primary, so a drill cannot name it in advance). Kinds that take a
// node resolve it through Env.Primary.
const TargetPrimary = "primary"

// Target is what the fault is aimed at, in words: the node, the region, the sites joined by "|",
// or "wan" for a fault on every link.
func (f Fault) Target() string {
	switch {
	case f.Node != "":
		return f.Node
	case f.Region != "":
		return f.Region
	case len(f.Regions) > 0:
		return strings.Join(f.Regions, "|")
	}
	return "wan"
}

// DerivedID is KIND:TARGET, the id of a fault given none (kill-primary, whose target is found at
// apply time, is its kind alone).
func (f Fault) DerivedID() string {
	if d, ok := Lookup(f.Kind); ok && !d.Targets().any() {
		return string(f.Kind)
	}
	return string(f.Kind) + ":" + f.Target()
}

// Params are a fault's settings by parameter name, in canonical text form. Values are checked
// against the kind's Param list by Validate, so the typed accessors see well-formed text.
type Params map[string]string

// Duration is a duration parameter (0 when absent).
func (p Params) Duration(name string) time.Duration {
	d, _ := time.ParseDuration(p[name])
	return d
}

// Int is an integer parameter (0 when absent).
func (p Params) Int(name string) int {
	n, _ := strconv.Atoi(p[name])
	return n
}

// Type is the type of a parameter's value.
type Type string

// Parameter types.
const (
	// TypeDuration is a Go duration ("150ms"); Min and Max are in nanoseconds.
	TypeDuration Type = "duration"
	// TypeInt is a whole number; Min and Max bound it.
	TypeInt Type = "int"
	// TypeChoice is one of Choices.
	TypeChoice Type = "choice"
	// TypeSite is a site of the topology: a region, or "witness" (Validate checks it exists).
	TypeSite Type = "site"
)

// Param is one setting a kind takes, as a drill-file field of its inject step.
type Param struct {
	// Name is the field name, e.g. latency, percent.
	Name string
	// Type is the value's type.
	Type Type
	// Required: the field must be given.
	Required bool
	// Min and Max bound a duration (in nanoseconds) or an int, inclusive; Max 0 means no bound.
	Min, Max int64
	// Choices are the values of a choice parameter.
	Choices []string
	// Help says what the field means, with an example, for errors and documentation.
	Help string
	// Typical is the range [low, high] exploration draws a duration or int from, narrower than
	// what a drill file may set (a minute of latency is valid but tells exploration little).
	// Zero: a required parameter is drawn from Min..Max, an optional one is left out.
	Typical [2]int64
}

// Check parses text as this parameter's value and returns its canonical form.
func (p Param) Check(text string) (string, error) {
	switch p.Type {
	case TypeDuration:
		d, err := time.ParseDuration(text)
		if err != nil {
			return "", fmt.Errorf("%q is not a duration (e.g. 150ms, 2s)", text)
		}
		if d < time.Duration(p.Min) || (p.Max > 0 && d > time.Duration(p.Max)) {
			return "", fmt.Errorf("%s out of %s", d, p.rangeText())
		}
		return d.String(), nil
	case TypeInt:
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not a whole number", text)
		}
		if n < p.Min || (p.Max > 0 && n > p.Max) {
			return "", fmt.Errorf("%d out of %s", n, p.rangeText())
		}
		return strconv.FormatInt(n, 10), nil
	case TypeChoice:
		if !slices.Contains(p.Choices, text) {
			return "", fmt.Errorf("%q is not one of %s", text, strings.Join(p.Choices, ", "))
		}
		return text, nil
	case TypeSite:
		if text == "" {
			return "", fmt.Errorf("empty site name")
		}
		return text, nil
	}
	return "", fmt.Errorf("parameter %s has unknown type %q", p.Name, p.Type)
}

// rangeText is the parameter's range in words, e.g. "1..99" or "0s..10s".
func (p Param) rangeText() string {
	if p.Type == TypeDuration {
		if p.Max > 0 {
			return fmt.Sprintf("%s..%s", time.Duration(p.Min), time.Duration(p.Max))
		}
		return fmt.Sprintf("at least %s", time.Duration(p.Min))
	}
	if p.Max > 0 {
		return fmt.Sprintf("%d..%d", p.Min, p.Max)
	}
	return fmt.Sprintf("at least %d", p.Min)
}

// Targets say which target fields a kind takes: region (one region), regions (two or more
// sites, pairwise) and node (one node).
type Targets struct {
	Region, Regions, Node bool
	// Optional: the fault may name no target (it then acts on the whole WAN).
	Optional bool
	// Help says what the target means, for "missing target" errors.
	Help string
}

// any reports whether the kind takes a target at all.
func (t Targets) any() bool { return t.Region || t.Regions || t.Node }

// Descriptor is one kind of fault. Embed Base for the defaults.
type Descriptor interface {
	// Kind is the kind's name.
	Kind() Kind
	// Summary is one line saying what the fault does, for help texts and documentation.
	Summary() string
	// Targets says which target fields the kind takes.
	Targets() Targets
	// Params lists the kind's own settings.
	Params() []Param
	// Check validates what Validate's shared checks (targets, parameter types and limits) cannot.
	Check(f Fault, t *topology.Topology) error
	// Instant: the fault is a one-off event with nothing to undo (restart).
	Instant() bool
	// TakesRegionOut reports whether the fault makes a whole region unreachable or dead to its
	// users, so that GeoDNS is expected to send them elsewhere.
	TakesRegionOut(f Fault) bool
	// Describe says the fault's settings in words for histories and reports ("+150ms ±20ms",
	// "30% loss"); "" for a kind without settings.
	Describe(f Fault) string
	// Resolve names the nodes the fault acts on, before it is recorded; nil when it acts on
	// links rather than nodes.
	Resolve(ctx context.Context, f Fault, env Env) ([]string, error)
	// Effects is what the fault does, layer by layer, under the given environment.
	Effects(f Fault, env Env) Effects
	// Beyond names the assumption of the design that f breaks, "" when it breaks none: a fault
	// beyond what the design claims to tolerate (a clock off by more than the lease margin) is
	// a documented limit when the design fails under it, not a bug.
	Beyond(f Fault, t *topology.Topology) string
	// Example is a typical fault of this kind on t, for documentation and for the conformance
	// test every runtime runs over every kind (compose/runtime/runtimetest). It leaves the
	// primary region alone where it can, so a test cluster heals quickly.
	Example(t *topology.Topology) Fault
}

// Base gives a Descriptor the defaults: no extra checks, not instant, no region outage, no
// description, no resolved nodes, no effects.
type Base struct{}

// Check accepts.
func (Base) Check(Fault, *topology.Topology) error { return nil }

// Instant is false.
func (Base) Instant() bool { return false }

// TakesRegionOut is false.
func (Base) TakesRegionOut(Fault) bool { return false }

// Describe is empty.
func (Base) Describe(Fault) string { return "" }

// Resolve names no node.
func (Base) Resolve(context.Context, Fault, Env) ([]string, error) { return nil, nil }

// Params are none.
func (Base) Params() []Param { return nil }

// Beyond is "": the design claims to tolerate the fault.
func (Base) Beyond(Fault, *topology.Topology) string { return "" }

// QuietRegion is the region an example fault aims at: the last region that is not the primary's
// (a fault there moves no primary), or the only one.
func QuietRegion(t *topology.Topology) string {
	for i := len(t.Regions) - 1; i >= 0; i-- {
		if t.Regions[i].Name != t.PrimaryRegion {
			return t.Regions[i].Name
		}
	}
	return t.Regions[0].Name
}

// quietNode is a web node of QuietRegion, for process examples.
func quietNode(t *topology.Topology) string {
	if ws := t.NodesOf(topology.RoleWeb, QuietRegion(t)); len(ws) > 0 {
		return ws[0].Name
	}
	return RegionNodes(t, QuietRegion(t))[0]
}

// Env is what resolving a fault and computing its effects may depend on.
type Env struct {
	// Plan is the running plan.
	Plan *topology.Plan
	// PacketLayer is true when the runtime drops packets in the kernel (Effects.Packets apply);
	// without it, packet-level effects fall back to the gossip transport.
	PacketLayer bool
	// Primary names the current primary db node, asked of the cluster (nil: unknown).
	Primary func(ctx context.Context) (string, error)
	// Off reports whether a Periodic fault is in its off phase (nil: every fault is on).
	Off func(id string) bool
}

// registry holds every kind, filled by the kinds' init functions and read-only afterwards.
var registry = map[Kind]Descriptor{}

// register adds a kind; a duplicate is a programming error.
func register(d Descriptor) {
	if _, dup := registry[d.Kind()]; dup {
		panic("fault: kind registered twice: " + string(d.Kind()))
	}
	registry[d.Kind()] = d
}

// Lookup returns the descriptor of a kind.
func Lookup(k Kind) (Descriptor, bool) {
	d, ok := registry[k]
	return d, ok
}

// Kinds lists every registered kind, sorted.
func Kinds() []Kind {
	out := make([]Kind, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// KindNames lists every registered kind's name, sorted (for messages).
func KindNames() []string {
	out := make([]string, 0, len(registry))
	for _, k := range Kinds() {
		out = append(out, string(k))
	}
	return out
}

// TakesRegionOut reports whether f, of a registered kind, takes a whole region away from its
// users (false for an unknown kind).
func TakesRegionOut(f Fault) bool {
	d, ok := Lookup(f.Kind)
	return ok && d.TakesRegionOut(f)
}

// Describe is the registered kind's description of f ("" for an unknown kind).
func Describe(f Fault) string {
	if d, ok := Lookup(f.Kind); ok {
		return d.Describe(f)
	}
	return ""
}

// Beyond names the design assumption f breaks ("" for none, or for an unknown kind).
func Beyond(f Fault, t *topology.Topology) string {
	if d, ok := Lookup(f.Kind); ok {
		return d.Beyond(f, t)
	}
	return ""
}

// IsInstant reports whether f's kind is instant.
func IsInstant(k Kind) bool {
	d, ok := Lookup(k)
	return ok && d.Instant()
}

// Validate checks a fault against a topology before anything is recorded: a known kind, an id,
// the targets the kind takes (existing regions, sites and nodes; never the WAN node, which
// carries the faults), every parameter of the right type within its limits, required ones
// present, and the kind's own Check. Parameters are rewritten to their canonical form.
func Validate(f *Fault, t *topology.Topology) error {
	if f.ID == "" {
		return fmt.Errorf("fault has no id")
	}
	d, ok := Lookup(f.Kind)
	if !ok {
		return fmt.Errorf("fault %s: unknown kind %q (valid: %s)", f.ID, f.Kind, strings.Join(KindNames(), ", "))
	}
	tg := d.Targets()
	if err := checkTargets(f, t, tg); err != nil {
		return fmt.Errorf("fault %s: %w", f.ID, err)
	}
	params := map[string]Param{}
	for _, p := range d.Params() {
		params[p.Name] = p
		text, given := f.Params[p.Name]
		if !given {
			if p.Required {
				return fmt.Errorf("fault %s: %s needs %s: %s", f.ID, f.Kind, p.Name, p.Help)
			}
			continue
		}
		canon, err := p.Check(text)
		if err == nil && p.Type == TypeSite && !slices.Contains(t.Sites(), canon) {
			err = fmt.Errorf("unknown site %q (sites: %s)", canon, strings.Join(t.Sites(), ", "))
		}
		if err != nil {
			return fmt.Errorf("fault %s: %s: %w", f.ID, p.Name, err)
		}
		f.Params[p.Name] = canon
	}
	for name := range f.Params {
		if _, ok := params[name]; !ok {
			return fmt.Errorf("fault %s: %s takes no %s", f.ID, f.Kind, name)
		}
	}
	return d.Check(*f, t)
}

func checkTargets(f *Fault, t *topology.Topology, tg Targets) error {
	given := 0
	for _, set := range []bool{f.Region != "", len(f.Regions) > 0, f.Node != ""} {
		if set {
			given++
		}
	}
	switch {
	case f.Region != "" && !tg.Region, len(f.Regions) > 0 && !tg.Regions, f.Node != "" && !tg.Node:
		return fmt.Errorf("%s takes %s", f.Kind, targetWords(tg))
	case given > 1:
		return fmt.Errorf("%s takes one target: %s", f.Kind, targetWords(tg))
	case given == 0 && tg.any() && !tg.Optional:
		return fmt.Errorf("%s needs %s: %s", f.Kind, targetWords(tg), tg.Help)
	}
	if f.Region != "" {
		if _, ok := t.Region(f.Region); !ok {
			return fmt.Errorf("unknown region %q (regions: %s)", f.Region, strings.Join(t.RegionNames(), ", "))
		}
	}
	if len(f.Regions) == 1 {
		return fmt.Errorf("regions needs at least two sites (for one, use region)")
	}
	for _, s := range f.Regions {
		if !slices.Contains(t.Sites(), s) {
			return fmt.Errorf("unknown site %q (sites: %s)", s, strings.Join(t.Sites(), ", "))
		}
	}
	if f.Node == TargetPrimary {
		return nil
	}
	if f.Node != "" {
		n, ok := t.Node(f.Node)
		if !ok {
			return fmt.Errorf("unknown node %q", f.Node)
		}
		if n.Role == topology.RoleWAN {
			return fmt.Errorf("the WAN node carries the faults themselves and cannot be a target")
		}
	}
	return nil
}

// targetWords names the target fields a kind takes, e.g. "region or regions".
func targetWords(tg Targets) string {
	var w []string
	if tg.Node {
		w = append(w, "a node (target, or target: primary)")
	}
	if tg.Region {
		w = append(w, "a region")
	}
	if tg.Regions {
		w = append(w, "regions")
	}
	if len(w) == 0 {
		return "no target"
	}
	return strings.Join(w, " or ")
}

// SafeName is a fault id with every character but letters, digits, '-' and '_' replaced by '_':
// readable in the names of the objects a fault creates (toxics, nftables tables), which accept
// only those. Callers add a hash of the exact id, since two ids may read alike.
func SafeName(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, id)
}

// ToxicPrefix names every toxic drill adds for a fault (base WAN toxics are named otherwise), so
// a residue check can tell leftovers from the steady WAN.
const ToxicPrefix = "drill_"

// ToxicName is the name of one of a fault's toxics: the prefix, a readable form of the id, a
// short hash of the exact id (two ids that read alike must not share toxics) and a suffix.
func ToxicName(id, suffix string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return fmt.Sprintf("%s%s_%04x_%s", ToxicPrefix, SafeName(id), h.Sum32()&0xffff, suffix)
}

// marshalFault is Fault's JSON form without custom methods.
type marshalFault Fault

// UnmarshalJSON reads a fault, including the ledger lines of drill versions before parameters
// were named (latency, jitter, loss_percent, bandwidth_kbps at the top level), so that `drill
// recover` still undoes their faults.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var w struct {
		marshalFault
		Latency       string `json:"latency"`
		Jitter        string `json:"jitter"`
		LossPercent   int    `json:"loss_percent"`
		BandwidthKBps int    `json:"bandwidth_kbps"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("decode fault: %w", err)
	}
	*f = Fault(w.marshalFault)
	old := map[string]string{}
	if w.Latency != "" {
		old[ParamLatency] = w.Latency
	}
	if w.Jitter != "" {
		old[ParamJitter] = w.Jitter
	}
	if w.LossPercent != 0 {
		old[ParamPercent] = strconv.Itoa(w.LossPercent)
	}
	if w.BandwidthKBps != 0 {
		old[ParamBandwidth] = strconv.Itoa(w.BandwidthKBps)
	}
	for k, v := range old {
		if f.Params == nil {
			f.Params = Params{}
		}
		if _, set := f.Params[k]; !set {
			f.Params[k] = v
		}
	}
	return nil
}

// sortPrefixes sorts prefixes by their text, for stable rules.
func sortPrefixes(ps []netip.Prefix) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].String() < ps[j].String() })
}
