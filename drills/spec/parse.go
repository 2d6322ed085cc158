package spec

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/history"
)

// Limits that keep a drill file sane.
const (
	maxClientsPerRegion = 100
	maxWriteRate        = 1000.0
	maxAliasDepth       = 32
)

// Load reads and parses the drill file at path.
func Load(path string) (*Drill, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("read drill file: %v", err)}}
	}
	return Parse(path, data)
}

// Parse reads a drill file. source names the file in errors and becomes Drill.Source. On failure
// the error is an ErrorList of every problem found, sorted by position.
func Parse(source string, data []byte) (*Drill, error) {
	file, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return nil, ErrorList{syntaxError(source, err)}
	}
	d := &decoder{source: source, anchors: map[string]ast.Node{}}
	var body ast.Node
	if len(file.Docs) > 0 {
		body = file.Docs[0].Body
		for _, doc := range file.Docs[1:] {
			if doc.Body != nil {
				d.errorf(nodePos(doc.Body), "", "a drill file holds exactly one YAML document")
				break
			}
		}
	}
	drill := d.drill(body)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			if d.errs[i].Line != d.errs[j].Line {
				return d.errs[i].Line < d.errs[j].Line
			}
			return d.errs[i].Column < d.errs[j].Column
		})
		return nil, d.errs
	}
	return drill, nil
}

// syntaxError turns a YAML parser error into an *Error at the offending token.
func syntaxError(source string, err error) *Error {
	e := &Error{File: source, Msg: err.Error()}
	var yerr yaml.Error
	if errors.As(err, &yerr) {
		e.Msg = yerr.GetMessage()
		if tk := yerr.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	return e
}

// decoder walks the YAML AST, collecting every problem with its position.
type decoder struct {
	source  string
	errs    ErrorList
	anchors map[string]ast.Node
	// untilAt is the workload's until entry, if the file has one.
	untilAt *entry
}

func (d *decoder) errorf(at Pos, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.source, Line: at.Line, Column: at.Column, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// entry is one key/value pair of a mapping; value is resolved (tags, anchors, aliases).
type entry struct {
	key    string
	keyPos Pos
	field  string
	value  ast.Node
}

// valuePos is where errors about the value point: the value, or the key for an empty value.
func (e entry) valuePos() Pos {
	if isNull(e.value) {
		return e.keyPos
	}
	return nodePos(e.value)
}

// mapping returns a mapping's entries, reporting a non-mapping, non-scalar or duplicate keys and
// keys not in allowed (nil allows any key). ok is false when node is not a mapping at all.
func (d *decoder) mapping(node ast.Node, at Pos, field string, allowed []string) ([]entry, bool) {
	var pairs []*ast.MappingValueNode
	switch n := node.(type) {
	case *ast.MappingNode:
		pairs = n.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{n}
	default:
		d.errorf(at, field, "must be a mapping, not %s", describe(node))
		return nil, false
	}
	seen := map[string]Pos{}
	var out []entry
	for _, pair := range pairs {
		keyAt := nodePos(pair.Key)
		if pair.Key.IsMergeKey() {
			d.errorf(keyAt, field, "merge keys (<<) are not supported")
			continue
		}
		key, ok := keyText(pair.Key)
		if !ok {
			d.errorf(keyAt, field, "keys must be plain names, not %s", describe(pair.Key))
			continue
		}
		keyField := childField(field, key)
		if first, dup := seen[key]; dup {
			d.errorf(keyAt, keyField, "duplicate key %q (first at line %d)", key, first.Line)
			continue
		}
		seen[key] = keyAt
		if allowed != nil && !contains(allowed, key) {
			d.errorf(keyAt, keyField, "unknown field %q (valid: %s)", key, strings.Join(allowed, ", "))
			continue
		}
		value, ok := d.resolve(pair.Value, keyAt, keyField)
		if !ok {
			continue
		}
		out = append(out, entry{key: key, keyPos: keyAt, field: keyField, value: value})
	}
	return out, true
}

// resolve follows tags, anchors and aliases to the node holding the value.
func (d *decoder) resolve(node ast.Node, at Pos, field string) (ast.Node, bool) {
	for range maxAliasDepth {
		switch n := node.(type) {
		case *ast.TagNode:
			node = n.Value
		case *ast.AnchorNode:
			d.anchors[n.Name.GetToken().Value] = n.Value
			node = n.Value
		case *ast.AliasNode:
			name := n.Value.GetToken().Value
			target, ok := d.anchors[name]
			if !ok {
				d.errorf(nodePos(n), field, "unknown alias *%s", name)
				return nil, false
			}
			node = target
		default:
			return node, true
		}
	}
	d.errorf(at, field, "aliases nested too deeply")
	return nil, false
}

// str reads a scalar as text.
func (d *decoder) str(e entry) (string, bool) {
	if isNull(e.value) {
		d.errorf(e.keyPos, e.field, "missing value")
		return "", false
	}
	text, ok := scalarText(e.value)
	if !ok {
		d.errorf(e.valuePos(), e.field, "must be a single value, not %s", describe(e.value))
		return "", false
	}
	return text, true
}

// name reads a region, node or drill name.
func (d *decoder) name(e entry, what string) (string, bool) {
	text, ok := d.str(e)
	if !ok {
		return "", false
	}
	if !namePattern.MatchString(text) {
		d.errorf(e.valuePos(), e.field, "%q is not a %s name (lower-case letters, digits and dashes)", text, what)
		return "", false
	}
	return text, true
}

// duration reads a Go duration; positive requires > 0, else >= 0.
func (d *decoder) duration(e entry, positive bool) (time.Duration, bool) {
	text, ok := d.str(e)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(text)
	switch {
	case err != nil && isNumber(e.value):
		d.errorf(e.valuePos(), e.field, "invalid duration %q: missing unit (use e.g. %ss)", text, text)
		return 0, false
	case err != nil:
		d.errorf(e.valuePos(), e.field, "invalid duration %q (use e.g. 500ms, 10s, 2m)", text)
		return 0, false
	case positive && v <= 0:
		d.errorf(e.valuePos(), e.field, "must be longer than 0, not %s", text)
		return 0, false
	case v < 0:
		d.errorf(e.valuePos(), e.field, "must not be negative, not %s", text)
		return 0, false
	}
	return v, true
}

// integer reads an integer in [lo, hi].
func (d *decoder) integer(e entry, lo, hi int) (int, bool) {
	n, isInt := e.value.(*ast.IntegerNode)
	if !isInt {
		d.errorf(e.valuePos(), e.field, "must be an integer, not %s", describe(e.value))
		return 0, false
	}
	var v int64
	switch i := n.Value.(type) {
	case int64:
		v = i
	case uint64:
		v = math.MaxInt64
		if i <= math.MaxInt64 {
			v = int64(i)
		}
	}
	if v < int64(lo) || v > int64(hi) {
		d.errorf(e.valuePos(), e.field, "must be between %d and %d, not %d", lo, hi, v)
		return 0, false
	}
	return int(v), true
}

// number reads an integer or decimal number.
func (d *decoder) number(e entry, what string) (float64, bool) {
	var v float64
	switch n := e.value.(type) {
	case *ast.IntegerNode:
		switch i := n.Value.(type) {
		case int64:
			v = float64(i)
		case uint64:
			v = float64(i)
		}
	case *ast.FloatNode:
		v = n.Value
	default:
		d.errorf(e.valuePos(), e.field, "must be a number%s, not %s", what, describe(e.value))
		return 0, false
	}
	return v, true
}

// boolean reads true or false.
func (d *decoder) boolean(e entry) (bool, bool) {
	b, ok := e.value.(*ast.BoolNode)
	if !ok {
		d.errorf(e.valuePos(), e.field, "must be true or false, not %s", describe(e.value))
		return false, false
	}
	return b.Value, true
}

// list returns a sequence's items, resolved.
func (d *decoder) list(e entry) ([]entry, bool) {
	seq, ok := e.value.(*ast.SequenceNode)
	if !ok {
		d.errorf(e.valuePos(), e.field, "must be a list, not %s", describe(e.value))
		return nil, false
	}
	var out []entry
	for i, item := range seq.Values {
		field := fmt.Sprintf("%s[%d]", e.field, i)
		at := nodePos(item)
		value, ok := d.resolve(item, at, field)
		if !ok {
			continue
		}
		out = append(out, entry{key: e.key, keyPos: at, field: field, value: value})
	}
	return out, true
}

// topFields are the top-level fields, in documentation order.
func topFields() []string {
	return []string{"name", "description", "settings", "budgets", "workload", "steps"}
}

// drill decodes the whole document.
func (d *decoder) drill(body ast.Node) *Drill {
	dr := &Drill{Source: d.source, Settings: map[string]string{}, Budgets: check.Budgets{}, settingPos: map[string]Pos{}}
	start := Pos{Line: 1, Column: 1}
	if body == nil || isNull(body) {
		d.errorf(start, "", "empty drill file: it needs at least name and steps")
		return dr
	}
	body, ok := d.resolve(body, start, "")
	if !ok {
		return dr
	}
	entries, ok := d.mapping(body, nodePos(body), "", topFields())
	if !ok {
		return dr
	}
	present := map[string]entry{}
	for _, e := range entries {
		present[e.key] = e
	}
	at := nodePos(body)
	if e, ok := present["name"]; ok {
		dr.Name, _ = d.name(e, "drill")
	} else {
		d.errorf(at, "name", "missing name")
	}
	if e, ok := present["description"]; ok {
		dr.Description, _ = d.str(e)
	}
	if e, ok := present["settings"]; ok {
		d.settings(e, dr)
	}
	if e, ok := present["budgets"]; ok {
		d.budgets(e, dr)
	}
	if e, ok := present["workload"]; ok {
		d.workload(e, dr)
	} else {
		dr.Workload = Workload{ClientsPerRegion: DefaultClientsPerRegion, WriteRate: DefaultWriteRate, ReadAfterWrite: DefaultReadAfterWrite}
	}
	if e, ok := present["steps"]; ok {
		d.steps(e, dr)
	} else {
		d.errorf(at, "steps", "missing steps")
	}
	return dr
}

func (d *decoder) settings(e entry, dr *Drill) {
	entries, ok := d.mapping(e.value, e.valuePos(), e.field, nil)
	if !ok {
		return
	}
	for _, s := range entries {
		value, ok := d.str(s)
		if !ok {
			continue
		}
		dr.Settings[s.key] = value
		dr.settingPos[s.key] = s.valuePos()
		// Values are checked against the embedded default topology here, so a typo fails at once;
		// Resolve checks them again against the topology the drill really runs on.
		if err := defaultTopology().Set(s.key, value); err != nil {
			at := s.valuePos()
			if strings.HasPrefix(settingMessage(err), "unknown setting") {
				at = s.keyPos
			}
			d.errorf(at, s.field, "%s", settingMessage(err))
		}
	}
}

func (d *decoder) budgets(e entry, dr *Drill) {
	entries, ok := d.mapping(e.value, e.valuePos(), e.field, nil)
	if !ok {
		return
	}
	for _, b := range entries {
		if !check.IsBudgetName(b.key) {
			d.errorf(b.keyPos, b.field, "unknown budget %q (valid: %s)", b.key, strings.Join(check.BudgetNames(), ", "))
			continue
		}
		v, ok := d.number(b, " (the unit is in the budget's name)")
		if !ok {
			continue
		}
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			d.errorf(b.valuePos(), b.field, "must be a finite number >= 0, not %s", describe(b.value))
			continue
		}
		dr.Budgets[b.key] = v
	}
}

func (d *decoder) workload(e entry, dr *Drill) {
	w := Workload{ClientsPerRegion: DefaultClientsPerRegion, WriteRate: DefaultWriteRate, ReadAfterWrite: DefaultReadAfterWrite}
	defer func() { dr.Workload = w }()
	entries, ok := d.mapping(e.value, e.valuePos(), e.field,
		[]string{"clients_per_region", "write_rate", "read_after_write", "duration", "until"})
	if !ok {
		return
	}
	var durationAt *entry
	for _, f := range entries {
		switch f.key {
		case "clients_per_region":
			if v, ok := d.integer(f, 1, maxClientsPerRegion); ok {
				w.ClientsPerRegion = v
			}
		case "write_rate":
			v, ok := d.number(f, " (writes per second per client)")
			if ok && (v <= 0 || v > maxWriteRate) {
				d.errorf(f.valuePos(), f.field, "must be more than 0 and at most %g writes per second, not %s", maxWriteRate, describe(f.value))
			} else if ok {
				w.WriteRate = v
			}
		case "read_after_write":
			if v, ok := d.boolean(f); ok {
				w.ReadAfterWrite = v
			}
		case "duration":
			f := f
			durationAt = &f
			w.Duration, _ = d.duration(f, true)
		case "until":
			text, ok := d.str(f)
			switch {
			case !ok:
			case text != UntilStop && text != UntilEnd:
				d.errorf(f.valuePos(), f.field, "must be %s or %s, not %q", UntilStop, UntilEnd, text)
			case durationAt != nil:
				d.errorf(f.keyPos, f.field, "set duration or until, not both (duration at line %d)", durationAt.keyPos.Line)
			default:
				w.Until = text
				d.untilAt = &f
			}
		}
	}
	// until before duration in the file: report the clash at duration.
	if durationAt != nil && w.Until != "" {
		d.errorf(durationAt.keyPos, durationAt.field, "set duration or until, not both")
		w.Until = ""
	}
}

// faultRule says which inject fields a fault kind takes.
type faultRule struct {
	// target: "region" (region required), "region-or-regions", "target-or-region", "optional"
	// (region, regions or nothing), or "none".
	target string
	// latency: the latency and jitter fields apply (latency required).
	latency bool
	// help says what the region means, for "missing region" messages.
	help string
}

func faultRules() map[string]faultRule {
	return map[string]faultRule{
		history.KindBlackhole:   {target: "region", help: "the region whose traffic to drop"},
		history.KindPartition:   {target: "region-or-regions", help: "the region to cut off from everything else, or regions: [a, b] to cut the links between them"},
		history.KindLatency:     {target: "optional", latency: true},
		history.KindKill:        {target: "target-or-region", help: "the node to kill (target) or the region whose nodes to kill"},
		history.KindFreeze:      {target: "target-or-region", help: "the node to freeze (target) or the region whose nodes to freeze"},
		history.KindRestart:     {target: "target-or-region", help: "the node to restart (target) or the region whose nodes to restart"},
		history.KindKillPrimary: {target: "none"},
	}
}

func injectFields() []string {
	return []string{"fault", "id", "region", "regions", "target", "latency", "jitter"}
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
	items, ok := d.list(e)
	if !ok {
		return
	}
	if len(items) == 0 {
		d.errorf(e.valuePos(), e.field, "a drill needs at least one step")
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
		d.errorf(d.untilAt.keyPos, d.untilAt.field, "until: stop, but no step stops the workload (add `- workload: stop`)")
	}
	if w.Until == UntilStop {
		for _, v := range st.verifiesWhileRunning {
			d.errorf(v.at, v.field, "final_read while the workload still runs (started at line %d): add `- workload: stop` before it", v.started.Line)
		}
	}
}

func (d *decoder) step(item entry, dr *Drill, st *stepState) (Step, bool) {
	at := nodePos(item.value)
	entries, ok := d.mapping(item.value, at, item.field, nil)
	if !ok {
		return Step{}, false
	}
	if len(entries) == 0 {
		d.errorf(at, item.field, "empty step: give one of %s", strings.Join(stepKinds(), ", "))
		return Step{}, false
	}
	if len(entries) > 1 {
		d.errorf(entries[1].keyPos, item.field, "a step has exactly one action, found %q and %q (start a new list item with -)", entries[0].key, entries[1].key)
		return Step{}, false
	}
	e := entries[0]
	step := Step{Kind: StepKind(e.key), Pos: at}
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
		step.Wait, ok = d.duration(e, true)
	case StepHeal:
		step.Heal, ok = d.heal(e, st)
	case StepVerify:
		step.Verify, ok = d.verify(e, dr, st)
	default:
		d.errorf(e.keyPos, e.field, "unknown step %q (valid: %s)", e.key, strings.Join(stepKinds(), ", "))
		return Step{}, false
	}
	return step, ok
}

func (d *decoder) steady(e entry, dr *Drill) (*Steady, bool) {
	entries, ok := d.mapping(e.value, e.valuePos(), e.field, []string{"within", "expect"})
	if !ok {
		return nil, false
	}
	s := &Steady{}
	good := true
	seen := map[string]bool{}
	for _, f := range entries {
		seen[f.key] = true
		switch f.key {
		case "within":
			s.Within, ok = d.duration(f, true)
			good = good && ok
		case "expect":
			items, ok := d.list(f)
			if ok && len(items) == 0 {
				d.errorf(f.valuePos(), f.field, "needs at least one condition")
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
	entries, ok := d.mapping(e.value, e.valuePos(), e.field, []string{"condition", "within", "hold"})
	if !ok {
		return nil, false
	}
	x := &Expect{}
	good := true
	seen := map[string]bool{}
	for _, f := range entries {
		seen[f.key] = true
		switch f.key {
		case "condition":
			x.Condition, ok = d.condition(f, dr)
		case "within":
			x.Within, ok = d.duration(f, true)
		case "hold":
			x.Hold, ok = d.duration(f, false)
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
	d.errorf(e.valuePos(), childField(e.field, key), "missing %s: %s", key, help)
	return false
}

func (d *decoder) condition(e entry, dr *Drill) (Condition, bool) {
	text, ok := d.str(e)
	if !ok {
		return Condition{}, false
	}
	c, err := ParseCondition(text)
	if err != nil {
		d.errorf(e.valuePos(), e.field, "%s", err.Error())
		return Condition{}, false
	}
	c.Pos = e.valuePos()
	if c.Region != "" {
		dr.refs = append(dr.refs, ref{name: c.Region, field: e.field, pos: c.Pos})
	}
	return c, true
}

func (d *decoder) workloadStep(e entry, st *stepState) (string, bool) {
	text, ok := d.str(e)
	if !ok {
		return "", false
	}
	switch text {
	case WorkloadStart:
		if st.workloadStarted.Line > 0 {
			d.errorf(e.valuePos(), e.field, "the workload is already running (started at line %d)", st.workloadStarted.Line)
			return "", false
		}
		st.workloadStarted, st.workloadEverRun = e.valuePos(), true
	case WorkloadStop:
		if st.workloadStarted.Line == 0 {
			d.errorf(e.valuePos(), e.field, "the workload is not running (no earlier `workload: start`)")
			return "", false
		}
		st.workloadStarted = Pos{}
	default:
		d.errorf(e.valuePos(), e.field, "must be %s or %s, not %q", WorkloadStart, WorkloadStop, text)
		return "", false
	}
	return text, true
}

func (d *decoder) inject(e entry, dr *Drill, st *stepState) (*Inject, bool) {
	entries, ok := d.mapping(e.value, e.valuePos(), e.field, injectFields())
	if !ok {
		return nil, false
	}
	in := &Inject{}
	fields := map[string]entry{}
	for _, f := range entries {
		fields[f.key] = f
	}
	kindEntry, hasKind := fields["fault"]
	if !hasKind {
		d.errorf(e.valuePos(), e.field+".fault", "missing fault (one of %s)", strings.Join(history.FaultKinds(), ", "))
		return nil, false
	}
	kind, ok := d.str(kindEntry)
	if !ok {
		return nil, false
	}
	rule, known := faultRules()[kind]
	if !known {
		d.errorf(kindEntry.valuePos(), kindEntry.field, "unknown fault %q (valid: %s)", kind, strings.Join(history.FaultKinds(), ", "))
		return nil, false
	}
	in.Fault = kind
	good := true
	bad := func(f entry, format string, args ...any) {
		d.errorf(f.keyPos, f.field, format, args...)
		good = false
	}
	// Fields that do not apply to this kind.
	for _, f := range entries {
		applies := true
		switch f.key {
		case "region":
			applies = rule.target != "none"
		case "regions":
			applies = rule.target == "region-or-regions" || rule.target == "optional"
		case "target":
			applies = rule.target == "target-or-region"
		case "latency", "jitter":
			applies = rule.latency
		}
		if !applies {
			bad(f, "%s does not apply to fault %s", f.key, kind)
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
			dr.refs = append(dr.refs, ref{name: in.Region, field: region.field, pos: region.valuePos()})
		}
		good = good && ok
	}
	if hasRegions {
		in.Regions, ok = d.regionList(regions, dr)
		good = good && ok
	}
	if hasTarget {
		if in.Target, ok = d.name(target, "node"); ok {
			dr.refs = append(dr.refs, ref{node: true, name: in.Target, field: target.field, pos: target.valuePos()})
		}
		good = good && ok
	}
	switch rule.target {
	case "region":
		if !hasRegion {
			d.errorf(e.valuePos(), e.field+".region", "missing region: %s needs %s", kind, rule.help)
			good = false
		}
	case "region-or-regions", "optional":
		if hasRegion && hasRegions {
			bad(regions, "set region or regions, not both")
		}
		if rule.target == "region-or-regions" && !hasRegion && !hasRegions {
			d.errorf(e.valuePos(), e.field+".region", "missing region: %s needs %s", kind, rule.help)
			good = false
		}
	case "target-or-region":
		if hasRegion && hasTarget {
			bad(target, "set target or region, not both")
		}
		if !hasRegion && !hasTarget {
			d.errorf(e.valuePos(), e.field+".target", "missing target: %s needs %s", kind, rule.help)
			good = false
		}
	}
	if rule.latency {
		if f, ok := fields["latency"]; ok {
			in.Latency, ok = d.duration(f, true)
			good = good && ok
		} else {
			d.errorf(e.valuePos(), e.field+".latency", "missing latency: the one-way latency to add, e.g. latency: 200ms")
			good = false
		}
		if f, ok := fields["jitter"]; ok {
			in.Jitter, ok = d.duration(f, false)
			good = good && ok
		}
	}
	if !good {
		return nil, false
	}

	in.ID = derivedID(in)
	idAt := e.valuePos()
	if f, ok := fields["id"]; ok {
		id, ok := d.str(f)
		if !ok {
			return nil, false
		}
		if id == HealAll || strings.ContainsAny(id, " \t\r\n") || id == "" {
			d.errorf(f.valuePos(), f.field, "%q cannot be a fault id (no blanks, and %q is reserved)", id, HealAll)
			return nil, false
		}
		in.ID, idAt = id, f.valuePos()
	}
	if first, active := st.active[in.ID]; active {
		d.errorf(idAt, e.field, "fault %s is already active (injected at line %d); heal it first or give this one another id", in.ID, first.Line)
		return nil, false
	}
	if !in.Instant() {
		st.active[in.ID] = idAt
	}
	return in, true
}

// regionList reads two or more distinct region names, sorted.
func (d *decoder) regionList(e entry, dr *Drill) ([]string, bool) {
	items, ok := d.list(e)
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
			d.errorf(item.valuePos(), item.field, "region %s listed twice (first at line %d)", name, first.Line)
			good = false
			continue
		}
		seen[name] = item.valuePos()
		dr.refs = append(dr.refs, ref{name: name, field: item.field, pos: item.valuePos()})
		out = append(out, name)
	}
	if good && len(out) < 2 {
		d.errorf(e.valuePos(), e.field, "needs at least two regions (for one region, use region:)")
		return nil, false
	}
	sort.Strings(out)
	return out, good
}

// derivedID is KIND:TARGET for a fault the file gave no id.
func derivedID(in *Inject) string {
	switch {
	case in.Fault == history.KindKillPrimary:
		return in.Fault
	case in.Target != "":
		return in.Fault + ":" + in.Target
	case in.Region != "":
		return in.Fault + ":" + in.Region
	case len(in.Regions) > 0:
		return in.Fault + ":" + strings.Join(in.Regions, "|")
	}
	return in.Fault + ":wan"
}

func (d *decoder) heal(e entry, st *stepState) (string, bool) {
	id, ok := d.str(e)
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
		d.errorf(e.valuePos(), e.field, "nothing to heal: no fault is active")
		return "", false
	case id == HealAll:
		st.active = map[string]Pos{}
	case st.active[id].Line == 0 && len(active) == 0:
		d.errorf(e.valuePos(), e.field, "no active fault %q to heal (no fault is active)", id)
		return "", false
	case st.active[id].Line == 0:
		d.errorf(e.valuePos(), e.field, "no active fault %q to heal (active: %s)", id, strings.Join(active, ", "))
		return "", false
	default:
		delete(st.active, id)
	}
	return id, true
}

func (d *decoder) verify(e entry, dr *Drill, st *stepState) (*Verify, bool) {
	entries, ok := d.mapping(e.value, e.valuePos(), e.field, []string{"final_read"})
	if !ok {
		return nil, false
	}
	v := &Verify{}
	for _, f := range entries {
		if v.FinalRead, ok = d.boolean(f); !ok {
			return nil, false
		}
	}
	if !v.FinalRead {
		d.errorf(e.valuePos(), e.field, "nothing to verify: set final_read: true")
		return nil, false
	}
	if st.workloadStarted.Line > 0 {
		st.verifiesWhileRunning = append(st.verifiesWhileRunning, runningVerify{at: e.valuePos(), field: e.field, started: st.workloadStarted})
	}
	return v, true
}

// keyText is a mapping key's text; ok is false for a key that is not a plain scalar.
func keyText(key ast.MapKeyNode) (string, bool) {
	if k, ok := key.(*ast.MappingKeyNode); ok {
		return scalarText(k.Value)
	}
	return scalarText(key)
}

// scalarText is a scalar's text as written; ok is false for mappings, lists and nulls.
func scalarText(node ast.Node) (string, bool) {
	switch n := node.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.LiteralNode:
		return n.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	return "", false
}

func isNull(node ast.Node) bool {
	_, null := node.(*ast.NullNode)
	return node == nil || null
}

func isNumber(node ast.Node) bool {
	switch node.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		return true
	}
	return false
}

// describe is a node as quoted in error messages: a scalar's text, or its shape.
func describe(node ast.Node) string {
	if text, ok := scalarText(node); ok {
		return fmt.Sprintf("%q", text)
	}
	switch node.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	if isNull(node) {
		return "an empty value"
	}
	return "a value"
}

// nodePos is where errors about a node point. A block mapping's own token is its first colon, so
// it points at its first key instead.
func nodePos(node ast.Node) Pos {
	switch n := node.(type) {
	case nil:
		return Pos{Line: 1, Column: 1}
	case *ast.MappingNode:
		if !n.IsFlowStyle && len(n.Values) > 0 {
			return nodePos(n.Values[0].Key)
		}
	case *ast.MappingValueNode:
		return nodePos(n.Key)
	case *ast.MappingKeyNode:
		if n.Value != nil {
			return nodePos(n.Value)
		}
	case *ast.TagNode:
		return nodePos(n.Value)
	case *ast.AnchorNode:
		return nodePos(n.Value)
	}
	tk := node.GetToken()
	if tk == nil || tk.Position == nil {
		return Pos{Line: 1, Column: 1}
	}
	return Pos{Line: tk.Position.Line, Column: tk.Position.Column}
}

func childField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
