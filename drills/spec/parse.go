package spec

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/yamlpos"
)

// Limits that keep a drill file sane.
const (
	maxClientsPerRegion = 100
	maxWriteRate        = 1000.0
	maxHotKeys          = 10000
	maxReadsPerWrite    = 1000
	maxJobRate          = 500
	maxJobWorkMS        = 60000
)

// Load reads and parses the drill file at path.
func Load(path string) (*Drill, error) {
	data, rerr := yamlpos.ReadFile(path, "drill file", yamlpos.MaxInputBytes)
	if rerr != nil {
		return nil, ErrorList{rerr}
	}
	return Parse(path, data)
}

// Parse reads a drill file. source names the file in errors and becomes Drill.Source. On failure
// the error is an ErrorList of every problem found, sorted by position.
func Parse(source string, data []byte) (*Drill, error) {
	d := &decoder{Decoder: yamlpos.NewDecoder(source)}
	body, ok := d.Document(data, "drill")
	if !ok {
		return nil, d.Errs
	}
	drill := d.drill(body)
	if len(d.Errs) > 0 {
		d.Errs.Sort()
		return nil, d.Errs
	}
	return drill, nil
}

// decoder walks the YAML AST of a drill file, collecting every problem with its position.
type decoder struct {
	*yamlpos.Decoder
	// untilAt is the workload's until entry, if the file has one.
	untilAt *entry
}

// entry is one key/value pair of a mapping, or one list item.
type entry = yamlpos.Entry

// name reads a region, node or drill name.
func (d *decoder) name(e entry, what string) (string, bool) {
	text, ok := d.Str(e)
	if !ok {
		return "", false
	}
	if !namePattern.MatchString(text) {
		d.Errorf(e.ValuePos(), e.Field, "%q is not a %s name (lower-case letters, digits and dashes)", text, what)
		return "", false
	}
	return text, true
}

// topFields are the top-level fields, in documentation order.
func topFields() []string {
	return []string{"name", "description", "topology", "settings", "budgets", "workload", "steps"}
}

// drill decodes the whole document.
func (d *decoder) drill(body ast.Node) *Drill {
	dr := &Drill{Source: d.Source, Settings: map[string]string{}, Budgets: check.Budgets{}, settingPos: map[string]Pos{}}
	present, at, ok := d.Root(body, "empty drill file: it needs at least name and steps", topFields())
	if !ok {
		return dr
	}
	if e, ok := present["name"]; ok {
		dr.Name, _ = d.name(e, "drill")
	} else {
		d.Errorf(at, "name", "missing name")
	}
	if e, ok := present["description"]; ok {
		dr.Description, _ = d.Str(e)
	}
	if e, ok := present["topology"]; ok {
		if name, ok := d.Str(e); ok {
			if _, found := topology.Builtin(name); found {
				dr.Topology = name
			} else {
				d.Errorf(e.ValuePos(), e.Field, "%q is not a built-in topology (valid: %s); a topology file is given with --topology",
					name, strings.Join(topology.BuiltinNames(), ", "))
			}
		}
	}
	if e, ok := present["settings"]; ok {
		d.settings(e, dr)
	}
	if e, ok := present["budgets"]; ok {
		DecodeBudgets(d.Decoder, e, dr.Budgets)
	}
	if e, ok := present["workload"]; ok {
		d.workload(e, dr)
	} else {
		dr.Workload = Workload{ClientsPerRegion: DefaultClientsPerRegion, WriteRate: DefaultWriteRate, ReadAfterWrite: DefaultReadAfterWrite}
	}
	if e, ok := present["steps"]; ok {
		d.steps(e, dr)
	} else {
		d.Errorf(at, "steps", "missing steps")
	}
	return dr
}

func (d *decoder) settings(e entry, dr *Drill) {
	entries, ok := d.Mapping(e.Value, e.ValuePos(), e.Field, nil)
	if !ok {
		return
	}
	for _, s := range entries {
		value, ok := d.Str(s)
		if !ok {
			continue
		}
		dr.Settings[s.Key] = value
		dr.settingPos[s.Key] = s.ValuePos()
		CheckSetting(d.Decoder, s, value)
	}
}

// CheckSetting checks a design setting (entry s, as in a drill file's settings) against the
// embedded default topology, so that a typo fails at once; Resolve checks it again against the
// topology the drill really runs on. ok is false, and the problem recorded in d (at the key for
// an unknown setting, else at the value), when the setting is unknown or its value bad.
func CheckSetting(d *yamlpos.Decoder, s yamlpos.Entry, value string) bool {
	err := defaultTopology().Set(s.Key, value)
	if err == nil {
		return true
	}
	at := s.ValuePos()
	if strings.HasPrefix(yamlpos.Messages(err), "unknown setting") {
		at = s.KeyPos
	}
	d.Errorf(at, s.Field, "%s", yamlpos.Messages(err))
	return false
}

// DecodeBudgets reads a budgets mapping (entry e, as in a drill file) into budgets: every key
// must be a budget name (check.BudgetNames) and every value a finite number >= 0. A bad budget
// is recorded in d and left out.
func DecodeBudgets(d *yamlpos.Decoder, e yamlpos.Entry, budgets check.Budgets) {
	entries, ok := d.Mapping(e.Value, e.ValuePos(), e.Field, nil)
	if !ok {
		return
	}
	for _, b := range entries {
		if !check.IsBudgetName(b.Key) {
			d.Errorf(b.KeyPos, b.Field, "unknown budget %q (valid: %s)", b.Key, strings.Join(check.BudgetNames(), ", "))
			continue
		}
		v, ok := d.Number(b, " (the unit is in the budget's name)")
		if !ok {
			continue
		}
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			d.Errorf(b.ValuePos(), b.Field, "must be a finite number >= 0, not %s", yamlpos.Describe(b.Value))
			continue
		}
		budgets[b.Key] = v
	}
}

func (d *decoder) workload(e entry, dr *Drill) {
	w := Workload{ClientsPerRegion: DefaultClientsPerRegion, WriteRate: DefaultWriteRate, ReadAfterWrite: DefaultReadAfterWrite,
		JobWorkMS: DefaultJobWorkMS}
	defer func() { dr.Workload = w }()
	entries, ok := d.Mapping(e.Value, e.ValuePos(), e.Field,
		[]string{"clients_per_region", "write_rate", "read_after_write", "read_others", "hot_keys", "reads_per_write", "job_rate", "job_work_ms", "duration", "until"})
	if !ok {
		return
	}
	var durationAt *entry
	for _, f := range entries {
		switch f.Key {
		case "clients_per_region":
			if v, ok := d.Integer(f, 1, maxClientsPerRegion); ok {
				w.ClientsPerRegion = v
			}
		case "write_rate":
			v, ok := d.Number(f, " (writes per second per client)")
			if ok && (v <= 0 || v > maxWriteRate) {
				d.Errorf(f.ValuePos(), f.Field, "must be more than 0 and at most %g writes per second, not %s", maxWriteRate, yamlpos.Describe(f.Value))
			} else if ok {
				w.WriteRate = v
			}
		case "read_after_write":
			if v, ok := d.Bool(f); ok {
				w.ReadAfterWrite = v
			}
		case "read_others":
			if v, ok := d.Bool(f); ok {
				w.ReadOthers = v
			}
		case "hot_keys":
			if v, ok := d.Integer(f, 1, maxHotKeys); ok {
				w.HotKeys = v
			}
		case "reads_per_write":
			if v, ok := d.Integer(f, 0, maxReadsPerWrite); ok {
				w.ReadsPerWrite = v
			}
		case "job_rate":
			v, ok := d.Number(f, " (jobs per second per client)")
			if ok && (v < 0 || v > maxJobRate) {
				d.Errorf(f.ValuePos(), f.Field, "must be between 0 and %d jobs per second, not %s", maxJobRate, yamlpos.Describe(f.Value))
			} else if ok {
				w.JobRate = v
			}
		case "job_work_ms":
			if v, ok := d.Integer(f, 0, maxJobWorkMS); ok {
				w.JobWorkMS = v
			}
		case "duration":
			f := f
			durationAt = &f
			w.Duration, _ = d.Duration(f, true)
		case "until":
			text, ok := d.Str(f)
			switch {
			case !ok:
			case text != UntilStop && text != UntilEnd:
				d.Errorf(f.ValuePos(), f.Field, "must be %s or %s, not %q", UntilStop, UntilEnd, text)
			case durationAt != nil:
				d.Errorf(f.KeyPos, f.Field, "set duration or until, not both (duration at line %d)", durationAt.KeyPos.Line)
			default:
				w.Until = text
				d.untilAt = &f
			}
		}
	}
	// until before duration in the file: report the clash at duration.
	if durationAt != nil && w.Until != "" {
		d.Errorf(durationAt.KeyPos, durationAt.Field, "set duration or until, not both")
		w.Until = ""
	}
}

// targetFields are the inject fields that name what a fault aims at; every other field but fault
// and id is a parameter of some kind (fault.Descriptor.Params).
var targetFields = []string{"region", "regions", "target"}

// injectFields lists every field an inject step may have: fault, id, the target fields and every
// registered kind's parameters.
func injectFields() []string {
	out := append([]string{"fault", "id"}, targetFields...)
	for _, k := range fault.Kinds() {
		d, _ := fault.Lookup(k)
		for _, p := range d.Params() {
			if !slices.Contains(out, p.Name) {
				out = append(out, p.Name)
			}
		}
	}
	return out
}

// stepState tracks what the steps so far have done, to check the next ones.
type stepState struct {
	// workloadStarted is where the running workload was started; zero while it is not running.
	workloadStarted Pos
	// workloadEverRun is true once any step started the workload.
	workloadEverRun bool
	// active maps the id of every fault injected and not yet healed to where it was injected.
	active map[string]Pos
	// verifiesWhileRunning are verify steps reached while the workload was running; they are
	// errors if the workload runs until a stop step.
	verifiesWhileRunning []runningVerify
}

// runningVerify is a verify step reached while the workload was running.
type runningVerify struct {
	at      Pos
	field   string
	started Pos
}

func (d *decoder) steps(e entry, dr *Drill) {
	items, ok := d.List(e)
	if !ok {
		return
	}
	if len(items) == 0 {
		d.Errorf(e.ValuePos(), e.Field, "a drill needs at least one step")
		return
	}
	st := &stepState{active: map[string]Pos{}}
	for _, item := range items {
		if step, ok := d.step(item, dr, st); ok {
			dr.Steps = append(dr.Steps, step)
		}
	}
	hasStop := false
	for _, s := range dr.Steps {
		hasStop = hasStop || (s.Kind == StepWorkload && s.Workload == WorkloadStop)
	}
	w := &dr.Workload
	switch {
	case w.Duration > 0:
	case w.Until == "" && hasStop:
		w.Until = UntilStop
	case w.Until == "":
		w.Until = UntilEnd
	case w.Until == UntilStop && !hasStop && st.workloadEverRun && d.untilAt != nil:
		d.Errorf(d.untilAt.KeyPos, d.untilAt.Field, "until: stop, but no step stops the workload (add `- workload: stop`)")
	}
	if w.Until == UntilStop {
		for _, v := range st.verifiesWhileRunning {
			d.Errorf(v.at, v.field, "final_read while the workload still runs (started at line %d): add `- workload: stop` before it", v.started.Line)
		}
	}
}

func (d *decoder) step(item entry, dr *Drill, st *stepState) (Step, bool) {
	at := yamlpos.NodePos(item.Value)
	entries, ok := d.Mapping(item.Value, at, item.Field, nil)
	if !ok {
		return Step{}, false
	}
	if len(entries) == 0 {
		d.Errorf(at, item.Field, "empty step: give one of %s", strings.Join(stepKinds(), ", "))
		return Step{}, false
	}
	if len(entries) > 1 {
		d.Errorf(entries[1].KeyPos, item.Field, "a step has exactly one action, found %q and %q (start a new list item with -)", entries[0].Key, entries[1].Key)
		return Step{}, false
	}
	e := entries[0]
	step := Step{Kind: StepKind(e.Key), Pos: at}
	switch step.Kind {
	case StepSteady:
		step.Steady, ok = d.steady(e, dr)
	case StepWorkload:
		step.Workload, ok = d.workloadStep(e, st)
	case StepInject:
		step.Inject, ok = d.inject(e, dr, st)
	case StepExpect:
		step.Expect, ok = d.expect(e, dr)
	case StepWait:
		step.Wait, ok = d.Duration(e, true)
	case StepHeal:
		step.Heal, ok = d.heal(e, st)
	case StepVerify:
		step.Verify, ok = d.verify(e, dr, st)
	default:
		d.Errorf(e.KeyPos, e.Field, "unknown step %q (valid: %s)", e.Key, strings.Join(stepKinds(), ", "))
		return Step{}, false
	}
	return step, ok
}

func (d *decoder) steady(e entry, dr *Drill) (*Steady, bool) {
	entries, ok := d.Mapping(e.Value, e.ValuePos(), e.Field, []string{"within", "expect"})
	if !ok {
		return nil, false
	}
	s := &Steady{}
	good := true
	seen := map[string]bool{}
	for _, f := range entries {
		seen[f.Key] = true
		switch f.Key {
		case "within":
			s.Within, ok = d.Duration(f, true)
			good = good && ok
		case "expect":
			items, ok := d.List(f)
			if ok && len(items) == 0 {
				d.Errorf(f.ValuePos(), f.Field, "needs at least one condition")
				ok = false
			}
			good = good && ok
			for _, item := range items {
				c, ok := d.condition(item, dr)
				good = good && ok
				s.Expect = append(s.Expect, c)
			}
		}
	}
	good = d.require(e, seen, "within", "how long the conditions may take, e.g. within: 10s") && good
	good = d.require(e, seen, "expect", "the conditions of the steady state, e.g. expect: [region_healthy us-east]") && good
	return s, good
}

func (d *decoder) expect(e entry, dr *Drill) (*Expect, bool) {
	entries, ok := d.Mapping(e.Value, e.ValuePos(), e.Field, []string{"condition", "within", "hold"})
	if !ok {
		return nil, false
	}
	x := &Expect{}
	good := true
	seen := map[string]bool{}
	for _, f := range entries {
		seen[f.Key] = true
		switch f.Key {
		case "condition":
			x.Condition, ok = d.condition(f, dr)
		case "within":
			x.Within, ok = d.Duration(f, true)
		case "hold":
			x.Hold, ok = d.Duration(f, false)
		}
		good = good && ok
	}
	good = d.require(e, seen, "condition", "what must become true, e.g. condition: primary_in eu-west") && good
	good = d.require(e, seen, "within", "how long it may take, e.g. within: 15s") && good
	return x, good
}

// require reports a field missing from the mapping of e.
func (d *decoder) require(e entry, seen map[string]bool, key, help string) bool {
	if seen[key] {
		return true
	}
	d.Errorf(e.ValuePos(), yamlpos.ChildField(e.Field, key), "missing %s: %s", key, help)
	return false
}

func (d *decoder) condition(e entry, dr *Drill) (Condition, bool) {
	text, ok := d.Str(e)
	if !ok {
		return Condition{}, false
	}
	c, err := ParseCondition(text)
	if err != nil {
		d.Errorf(e.ValuePos(), e.Field, "%s", err.Error())
		return Condition{}, false
	}
	c.Pos = e.ValuePos()
	if c.Region != "" {
		dr.refs = append(dr.refs, ref{name: c.Region, field: e.Field, pos: c.Pos})
	}
	return c, true
}

func (d *decoder) workloadStep(e entry, st *stepState) (string, bool) {
	text, ok := d.Str(e)
	if !ok {
		return "", false
	}
	switch text {
	case WorkloadStart:
		if st.workloadStarted.Line > 0 {
			d.Errorf(e.ValuePos(), e.Field, "the workload is already running (started at line %d)", st.workloadStarted.Line)
			return "", false
		}
		st.workloadStarted, st.workloadEverRun = e.ValuePos(), true
	case WorkloadStop:
		if st.workloadStarted.Line == 0 {
			d.Errorf(e.ValuePos(), e.Field, "the workload is not running (no earlier `workload: start`)")
			return "", false
		}
		st.workloadStarted = Pos{}
	default:
		d.Errorf(e.ValuePos(), e.Field, "must be %s or %s, not %q", WorkloadStart, WorkloadStop, text)
		return "", false
	}
	return text, true
}

func (d *decoder) inject(e entry, dr *Drill, st *stepState) (*Inject, bool) {
	entries, ok := d.Mapping(e.Value, e.ValuePos(), e.Field, injectFields())
	if !ok {
		return nil, false
	}
	in := &Inject{}
	fields := yamlpos.Fields(entries)
	kindEntry, hasKind := fields["fault"]
	if !hasKind {
		d.Errorf(e.ValuePos(), e.Field+".fault", "missing fault (one of %s)", strings.Join(fault.KindNames(), ", "))
		return nil, false
	}
	kind, ok := d.Str(kindEntry)
	if !ok {
		return nil, false
	}
	desc, known := fault.Lookup(fault.Kind(kind))
	if !known {
		d.Errorf(kindEntry.ValuePos(), kindEntry.Field, "unknown fault %q (valid: %s)", kind, strings.Join(fault.KindNames(), ", "))
		return nil, false
	}
	in.Fault.Kind = desc.Kind()
	tg := desc.Targets()
	params := map[string]fault.Param{}
	for _, p := range desc.Params() {
		params[p.Name] = p
	}
	good := true
	bad := func(f entry, format string, args ...any) {
		d.Errorf(f.KeyPos, f.Field, format, args...)
		good = false
	}
	// Fields that do not apply to this kind.
	for _, f := range entries {
		applies := true
		switch f.Key {
		case "fault", "id":
		case "region":
			applies = tg.Region
		case "regions":
			applies = tg.Regions
		case "target":
			applies = tg.Node
		default:
			_, applies = params[f.Key]
		}
		if !applies {
			bad(f, "%s does not apply to fault %s", f.Key, kind)
		}
	}
	if !good {
		return nil, false
	}

	region, hasRegion := fields["region"]
	regions, hasRegions := fields["regions"]
	target, hasTarget := fields["target"]
	if hasRegion {
		if in.Region, ok = d.name(region, "region"); ok {
			dr.refs = append(dr.refs, ref{name: in.Region, field: region.Field, pos: region.ValuePos()})
		}
		good = good && ok
	}
	if hasRegions {
		in.Regions, ok = d.regionList(regions, dr)
		good = good && ok
	}
	if hasTarget {
		if in.Node, ok = d.name(target, "node"); ok {
			dr.refs = append(dr.refs, ref{node: true, name: in.Node, field: target.Field, pos: target.ValuePos()})
		}
		good = good && ok
	}
	given := 0
	for _, has := range []bool{hasRegion, hasRegions, hasTarget} {
		if has {
			given++
		}
	}
	switch {
	case given > 1:
		second := regions
		if hasTarget {
			second = target
		}
		var names []string
		for _, g := range []struct {
			name string
			has  bool
		}{{"target", hasTarget}, {"region", hasRegion}, {"regions", hasRegions}} {
			if g.has {
				names = append(names, g.name)
			}
		}
		bad(second, "set %s, not %s", strings.Join(names, " or "), map[bool]string{true: "both", false: "all of them"}[len(names) == 2])
	case given == 0 && (tg.Region || tg.Regions || tg.Node) && !tg.Optional:
		missing := "region"
		if tg.Node {
			missing = "target"
		}
		d.Errorf(e.ValuePos(), e.Field+"."+missing, "missing %s: %s needs %s", missing, kind, tg.Help)
		good = false
	}
	for _, p := range desc.Params() {
		f, given := fields[p.Name]
		if !given {
			if p.Required {
				d.Errorf(e.ValuePos(), e.Field+"."+p.Name, "missing %s: %s", p.Name, p.Help)
				good = false
			}
			continue
		}
		text, ok := d.param(f, p, dr)
		good = good && ok
		if ok {
			if in.Params == nil {
				in.Params = fault.Params{}
			}
			in.Params[p.Name] = text
		}
	}
	if !good {
		return nil, false
	}

	in.ID = in.Fault.DerivedID()
	idAt := e.ValuePos()
	if f, ok := fields["id"]; ok {
		id, ok := d.Str(f)
		if !ok {
			return nil, false
		}
		if id == HealAll || strings.ContainsAny(id, " \t\r\n") || id == "" {
			d.Errorf(f.ValuePos(), f.Field, "%q cannot be a fault id (no blanks, and %q is reserved)", id, HealAll)
			return nil, false
		}
		in.ID, idAt = id, f.ValuePos()
	}
	if first, active := st.active[in.ID]; active {
		d.Errorf(idAt, e.Field, "fault %s is already active (injected at line %d); heal it first or give this one another id", in.ID, first.Line)
		return nil, false
	}
	if !in.Instant() {
		st.active[in.ID] = idAt
	}
	return in, true
}

// param reads one fault parameter by its declared type and returns it in canonical form.
func (d *decoder) param(f entry, p fault.Param, dr *Drill) (string, bool) {
	var text string
	switch p.Type {
	case fault.TypeDuration:
		if p.Min < 0 {
			// A signed duration (a clock's offset): Check reads it and says what is out of range.
			v, ok := d.Str(f)
			if !ok {
				return "", false
			}
			text = v
			break
		}
		v, ok := d.Duration(f, p.Min > 0)
		if !ok {
			return "", false
		}
		text = v.String()
	case fault.TypeInt:
		hi := int(p.Max)
		if hi == 0 {
			hi = math.MaxInt
		}
		v, ok := d.Integer(f, int(p.Min), hi)
		if !ok {
			return "", false
		}
		text = strconv.Itoa(v)
	case fault.TypeSite:
		v, ok := d.name(f, "site")
		if !ok {
			return "", false
		}
		text = v
		dr.refs = append(dr.refs, ref{site: true, name: v, field: f.Field, pos: f.ValuePos()})
	default:
		v, ok := d.Str(f)
		if !ok {
			return "", false
		}
		text = v
	}
	canon, err := p.Check(text)
	if err != nil {
		d.Errorf(f.ValuePos(), f.Field, "%s", err.Error())
		return "", false
	}
	return canon, true
}

// regionList reads two or more distinct region names, sorted.
func (d *decoder) regionList(e entry, dr *Drill) ([]string, bool) {
	items, ok := d.List(e)
	if !ok {
		return nil, false
	}
	seen := map[string]Pos{}
	var out []string
	good := true
	for _, item := range items {
		name, ok := d.name(item, "region")
		if !ok {
			good = false
			continue
		}
		if first, dup := seen[name]; dup {
			d.Errorf(item.ValuePos(), item.Field, "region %s listed twice (first at line %d)", name, first.Line)
			good = false
			continue
		}
		seen[name] = item.ValuePos()
		dr.refs = append(dr.refs, ref{site: true, name: name, field: item.Field, pos: item.ValuePos()}) // a region or the witness
		out = append(out, name)
	}
	if good && len(out) < 2 {
		d.Errorf(e.ValuePos(), e.Field, "needs at least two regions (for one region, use region:)")
		return nil, false
	}
	sort.Strings(out)
	return out, good
}

func (d *decoder) heal(e entry, st *stepState) (string, bool) {
	id, ok := d.Str(e)
	if !ok {
		return "", false
	}
	active := make([]string, 0, len(st.active))
	for a := range st.active {
		active = append(active, a)
	}
	sort.Strings(active)
	switch {
	case id == HealAll && len(active) == 0:
		d.Errorf(e.ValuePos(), e.Field, "nothing to heal: no fault is active")
		return "", false
	case id == HealAll:
		st.active = map[string]Pos{}
	case st.active[id].Line == 0 && len(active) == 0:
		d.Errorf(e.ValuePos(), e.Field, "no active fault %q to heal (no fault is active)", id)
		return "", false
	case st.active[id].Line == 0:
		d.Errorf(e.ValuePos(), e.Field, "no active fault %q to heal (active: %s)", id, strings.Join(active, ", "))
		return "", false
	default:
		delete(st.active, id)
	}
	return id, true
}

func (d *decoder) verify(e entry, dr *Drill, st *stepState) (*Verify, bool) {
	entries, ok := d.Mapping(e.Value, e.ValuePos(), e.Field, []string{"final_read"})
	if !ok {
		return nil, false
	}
	v := &Verify{}
	for _, f := range entries {
		if v.FinalRead, ok = d.Bool(f); !ok {
			return nil, false
		}
	}
	if !v.FinalRead {
		d.Errorf(e.ValuePos(), e.Field, "nothing to verify: set final_read: true")
		return nil, false
	}
	if st.workloadStarted.Line > 0 {
		st.verifiesWhileRunning = append(st.verifiesWhileRunning, runningVerify{at: e.ValuePos(), field: e.Field, started: st.workloadStarted})
	}
	return v, true
}
