// Package gameday runs game days: a plan of drills (and human steps) run in order, once or on a
// cron schedule, with every run appended to a history people can follow.
//
// A plan file looks like this:
//
//	name: weekly-failover
//	runtime: local                  # default local
//	topology: regions.yaml          # optional, relative to the plan file
//	mode: stop-on-first-failure     # or run-all
//	drills:
//	  - drill: region-outage        # a built-in drill, or a drill file (relative to the plan)
//	    set: {replication: semi-sync}
//	    budgets: {lost_acked_writes: 0}
//	  - human: "Page the on-call and wait for ack"
//	  - drill: drills/my-drill.yaml
//	    topology: other.yaml        # this drill's own topology
//	webhook: {url: "https://hooks.example/drill", timeout: 5s, retries: 3}
//	schedule: {cron: "0 10 * * FRI", jitter: 5m}
//
// Load checks everything before anything starts: the plan's shape, every drill (a built-in name
// or an existing, valid drill file), every topology, every `set` and budget, the runtime and the
// cron expression. Problems are located as FILE:LINE:COL: FIELD: MESSAGE (*Error).
//
// Run runs a plan once: one report directory per drill (through an injected RunDrill, so the
// package never starts clusters itself), then summary.json, junit.xml and index.html for the game
// day, an entry in the history and an optional webhook. Schedule runs a plan on a cron schedule,
// never two runs at once. History reads the history back and writes its index.html.
package gameday

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/drillworks/drill/drills/builtin"
	"github.com/drillworks/drill/drills/check"
	"github.com/drillworks/drill/drills/spec"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/yamlpos"
)

// Mode says what happens after a drill fails.
type Mode string

// Modes.
const (
	// ModeStopOnFirstFailure skips the remaining steps after a drill fails or errors (default).
	ModeStopOnFirstFailure Mode = "stop-on-first-failure"
	// ModeRunAll runs every step whatever the verdicts.
	ModeRunAll Mode = "run-all"
)

// Webhook defaults and limits.
const (
	DefaultWebhookTimeout = 5 * time.Second
	DefaultWebhookRetries = 2
	maxWebhookRetries     = 10
)

// Plan is a parsed game-day plan.
type Plan struct {
	// Name identifies the plan (lower-case letters, digits and dashes).
	Name string
	// Runtime runs the nodes ("local" by default).
	Runtime string
	// Topology is the plan's topology file as written (empty: the CLI's --topology or the
	// embedded default); TopologyPath is it resolved against the plan's directory.
	Topology, TopologyPath string
	// Mode is stop-on-first-failure or run-all.
	Mode Mode
	// Steps are the drills and human steps, in order.
	Steps []Step
	// Webhook, when set, is notified at the end of every run.
	Webhook *Webhook
	// Schedule, when set, is the plan's cron schedule (the CLI's --cron overrides it).
	Schedule *Schedule
	// Source is the file name given to Parse.
	Source string

	// Where fields are, for Resolve's errors.
	runtimePos, topologyPos Pos
}

// Step is one item of the plan's drills list: a drill, or a human step.
type Step struct {
	// Pos is where the item is in the plan file; Field its path (drills[2]).
	Pos   Pos
	Field string
	// Drill is set for a drill step.
	Drill *DrillStep
	// Human is the prompt of a human step (an operator acknowledges it with Enter).
	Human string
}

// Label is a short description of the step for tables and logs.
func (s Step) Label() string {
	if s.Drill != nil {
		if s.Drill.Drill != nil {
			return s.Drill.Drill.Name
		}
		return s.Drill.Ref
	}
	return "human: " + s.Human
}

// DrillStep is one drill of the plan.
type DrillStep struct {
	// Ref is the drill as written: a built-in name or a file name.
	Ref string
	// Path is the drill file resolved against the plan's directory; empty for a built-in drill.
	Path string
	// Topology is this drill's own topology file as written (empty: the plan's); TopologyPath is
	// it resolved against the plan's directory.
	Topology, TopologyPath string
	// Set are design overrides (as `drill run --set`), applied after the drill's own settings.
	Set map[string]string
	// Budgets override the drill's budgets.
	Budgets check.Budgets

	// Drill and Resolved are filled by Resolve: the parsed drill with Set and Budgets applied,
	// and the topology it runs on with every setting applied.
	Drill    *spec.Drill
	Resolved *topology.Topology

	refPos, topologyPos Pos
	setPos              map[string]entry
}

// Webhook is where a run's outcome is posted.
type Webhook struct {
	// URL receives a JSON POST (http or https).
	URL string
	// Timeout bounds one attempt.
	Timeout time.Duration
	// Retries is how many times a failed attempt is retried (network error, 5xx, 429).
	Retries int
	// Headers are sent with every POST (e.g. an Authorization the receiver wants).
	Headers map[string]string
	// SecretEnv names the environment variable holding the key that signs every POST
	// (X-Drill-Signature); empty: unsigned. Secret is its value, read by Resolve.
	SecretEnv string
	Secret    []byte
	// secretAt is where secret_env is in the file.
	secretAt Pos
}

// Schedule is when a plan runs by itself.
type Schedule struct {
	// Cron is a cron expression: 5 fields (minute first), 6 fields (seconds first), or a
	// descriptor such as @daily or @every 1h.
	Cron string
	// Jitter delays each run by a random time up to this long.
	Jitter time.Duration
}

// LoadOptions are what Load needs besides the file.
type LoadOptions struct {
	// Topology, when set, replaces the plan's top-level topology (the CLI's --topology). A
	// drill's own topology still wins.
	Topology *topology.Topology
	// CheckRuntime reports whether a runtime name is usable (nil: only "local" is).
	CheckRuntime func(name string) error
	// Getenv reads the environment (the webhook's secret_env; nil: os.Getenv).
	Getenv func(string) string
}

// Load reads a plan file, parses it and resolves it (Resolve). On failure the error is an
// ErrorList of every problem found, sorted by position.
func Load(path string, o LoadOptions) (*Plan, error) {
	data, rerr := yamlpos.ReadFile(path, "plan file", yamlpos.MaxInputBytes)
	if rerr != nil {
		return nil, ErrorList{rerr}
	}
	p, errs := parse(path, data)
	if p != nil {
		// Resolve what parsed, so one run of Load reports every problem of the plan.
		var rerrs ErrorList
		if errors.As(p.Resolve(filepath.Dir(path), o), &rerrs) {
			errs = append(errs, rerrs...)
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return p, nil
}

// Parse reads a plan file: its shape, names, modes, durations, budgets, setting keys (against
// the embedded default topology) and cron expression. It reads no other file: Resolve does.
func Parse(source string, data []byte) (*Plan, error) {
	p, errs := parse(source, data)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return p, nil
}

// parse decodes what it can: the plan (nil after a YAML syntax error) and every problem found.
func parse(source string, data []byte) (*Plan, ErrorList) {
	d := &decoder{Decoder: yamlpos.NewDecoder(source)}
	body, ok := d.Document(data, "plan")
	if !ok {
		return nil, d.Errs
	}
	return d.plan(body), d.Errs
}

func topFields() []string {
	return []string{"name", "description", "runtime", "topology", "mode", "drills", "webhook", "schedule"}
}

func (d *decoder) plan(body ast.Node) *Plan {
	p := &Plan{Source: d.Source, Runtime: "local", Mode: ModeStopOnFirstFailure}
	present, at, ok := d.Root(body, "empty plan file: it needs at least name and drills", topFields())
	if !ok {
		return p
	}
	if e, ok := present["name"]; ok {
		if name, ok := d.Str(e); ok {
			if validName(name) {
				p.Name = name
			} else {
				d.Errorf(e.ValuePos(), e.Field, "%q is not a plan name (lower-case letters, digits and dashes)", name)
			}
		}
	} else {
		d.Errorf(at, "name", "missing name")
	}
	if e, ok := present["description"]; ok {
		d.Str(e)
	}
	if e, ok := present["runtime"]; ok {
		if rt, ok := d.Str(e); ok {
			p.Runtime, p.runtimePos = rt, e.ValuePos()
		}
	}
	if e, ok := present["topology"]; ok {
		if path, ok := d.Str(e); ok {
			p.Topology, p.topologyPos = path, e.ValuePos()
		}
	}
	if e, ok := present["mode"]; ok {
		if m, ok := d.Str(e); ok {
			switch Mode(m) {
			case ModeStopOnFirstFailure, ModeRunAll:
				p.Mode = Mode(m)
			default:
				d.Errorf(e.ValuePos(), e.Field, "must be %s or %s, not %q", ModeStopOnFirstFailure, ModeRunAll, m)
			}
		}
	}
	if e, ok := present["drills"]; ok {
		d.steps(e, p)
	} else {
		d.Errorf(at, "drills", "missing drills: the drills to run, e.g. drills: [{drill: region-outage}]")
	}
	if e, ok := present["webhook"]; ok {
		p.Webhook = d.webhook(e)
	}
	if e, ok := present["schedule"]; ok {
		p.Schedule = d.schedule(e)
	}
	return p
}

func (d *decoder) steps(e entry, p *Plan) {
	items, ok := d.List(e)
	if !ok {
		return
	}
	drills := 0
	for _, item := range items {
		entries, ok := d.Mapping(item.Value, item.ValuePos(), item.Field, []string{"drill", "human", "set", "budgets", "topology"})
		if !ok {
			continue
		}
		fields := yamlpos.Fields(entries)
		st := Step{Pos: item.ValuePos(), Field: item.Field}
		drillE, isDrill := fields["drill"]
		humanE, isHuman := fields["human"]
		switch {
		case isDrill && isHuman:
			d.Errorf(humanE.KeyPos, humanE.Field, "a step is a drill or a human step, not both (start a new list item with -)")
			continue
		case isHuman:
			for _, f := range entries {
				if f.Key != "human" {
					d.Errorf(f.KeyPos, f.Field, "%s does not apply to a human step", f.Key)
				}
			}
			if text, ok := d.Str(humanE); ok {
				if strings.TrimSpace(text) == "" {
					d.Errorf(humanE.ValuePos(), humanE.Field, "the prompt is empty: say what the operator must do")
				}
				st.Human = strings.TrimSpace(text)
			}
		case isDrill:
			st.Drill = d.drillStep(drillE, fields)
			drills++
		default:
			d.Errorf(item.ValuePos(), item.Field, "missing drill: give drill: NAME|FILE, or human: PROMPT")
			continue
		}
		p.Steps = append(p.Steps, st)
	}
	if drills == 0 && len(d.Errs) == 0 {
		d.Errorf(e.ValuePos(), e.Field, "a plan needs at least one drill")
	}
}

func (d *decoder) drillStep(drillE entry, fields map[string]entry) *DrillStep {
	ds := &DrillStep{Set: map[string]string{}, Budgets: check.Budgets{}, setPos: map[string]entry{}}
	if ref, ok := d.Str(drillE); ok {
		ds.Ref, ds.refPos = strings.TrimSpace(ref), drillE.ValuePos()
	}
	if e, ok := fields["topology"]; ok {
		if path, ok := d.Str(e); ok {
			ds.Topology, ds.topologyPos = path, e.ValuePos()
		}
	}
	if e, ok := fields["set"]; ok {
		if entries, ok := d.Mapping(e.Value, e.ValuePos(), e.Field, nil); ok {
			for _, s := range entries {
				value, ok := d.Str(s)
				if !ok {
					continue
				}
				// Checked against the default topology now so a typo fails at once; Resolve checks
				// the value again against the topology the drill really runs on.
				if !spec.CheckSetting(d.Decoder, s, value) {
					continue
				}
				ds.Set[s.Key], ds.setPos[s.Key] = value, s
			}
		}
	}
	if e, ok := fields["budgets"]; ok {
		spec.DecodeBudgets(d.Decoder, e, ds.Budgets)
	}
	return ds
}

func (d *decoder) webhook(e entry) *Webhook {
	entries, ok := d.Mapping(e.Value, e.ValuePos(), e.Field, []string{"url", "timeout", "retries", "headers", "secret_env"})
	if !ok {
		return nil
	}
	w := &Webhook{Timeout: DefaultWebhookTimeout, Retries: DefaultWebhookRetries}
	hasURL := false
	for _, f := range entries {
		switch f.Key {
		case "url":
			text, ok := d.Str(f)
			if !ok {
				continue
			}
			hasURL = true
			u, err := url.Parse(text)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.Errorf(f.ValuePos(), f.Field, "%q is not an http or https URL", text)
				continue
			}
			w.URL = text
		case "timeout":
			if v, ok := d.Duration(f, true); ok {
				w.Timeout = v
			}
		case "retries":
			if v, ok := d.Integer(f, 0, maxWebhookRetries); ok {
				w.Retries = v
			}
		case "headers":
			hs, ok := d.Mapping(f.Value, f.ValuePos(), f.Field, nil)
			if !ok {
				continue
			}
			w.Headers = map[string]string{}
			for _, h := range hs {
				v, ok := d.Str(h)
				if !ok {
					continue
				}
				if reservedHeader(h.Key) {
					d.Errorf(h.KeyPos, h.Field, "%s is set by drill itself", h.Key)
					continue
				}
				w.Headers[h.Key] = v
			}
		case "secret_env":
			if v, ok := d.Str(f); ok {
				w.SecretEnv, w.secretAt = v, f.ValuePos()
			}
		}
	}
	if !hasURL {
		d.Errorf(e.ValuePos(), yamlpos.ChildField(e.Field, "url"), "missing url: where to POST the outcome")
	}
	return w
}

func (d *decoder) schedule(e entry) *Schedule {
	entries, ok := d.Mapping(e.Value, e.ValuePos(), e.Field, []string{"cron", "jitter"})
	if !ok {
		return nil
	}
	s := &Schedule{}
	hasCron := false
	for _, f := range entries {
		switch f.Key {
		case "cron":
			text, ok := d.Str(f)
			if !ok {
				continue
			}
			hasCron = true
			if _, err := ParseCron(text); err != nil {
				d.Errorf(f.ValuePos(), f.Field, "%v", err)
				continue
			}
			s.Cron = text
		case "jitter":
			if v, ok := d.Duration(f, false); ok {
				s.Jitter = v
			}
		}
	}
	if !hasCron {
		d.Errorf(e.ValuePos(), yamlpos.ChildField(e.Field, "cron"), `missing cron: when to run, e.g. cron: "0 10 * * FRI"`)
	}
	return s
}

// Resolve checks the plan against the files and runtimes it names, relative to dir (the plan
// file's directory): every drill must be a built-in drill or a valid drill file, every topology
// file must load, the drill must fit its topology, every `set` must be valid for it, and the
// runtime must exist. It fills each DrillStep's Drill and Resolved. Errors are an ErrorList with
// positions in the plan file (a problem inside a drill or topology file is quoted after the
// plan's position).
func (p *Plan) Resolve(dir string, o LoadOptions) error {
	var errs ErrorList
	errorf := func(at Pos, field, format string, args ...any) {
		errs = append(errs, yamlpos.Errorf(p.Source, at, field, format, args...))
	}
	check := o.CheckRuntime
	if check == nil {
		check = func(name string) error {
			if name != "local" {
				return fmt.Errorf("unknown runtime %q (available: local)", name)
			}
			return nil
		}
	}
	if err := check(p.Runtime); err != nil {
		at := p.runtimePos
		if at.Line == 0 {
			at = Pos{Line: 1, Column: 1}
		}
		errorf(at, "runtime", "%v", err)
	}
	if w := p.Webhook; w != nil && w.SecretEnv != "" {
		getenv := o.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		if v := getenv(w.SecretEnv); v == "" {
			errorf(w.secretAt, "webhook.secret_env", "environment variable %s is not set: it must hold the webhook's signing key", w.SecretEnv)
		} else {
			w.Secret = []byte(v)
		}
	}
	loadTopo := func(path string) (*topology.Topology, error) { return topology.Load(path) }
	base := o.Topology
	if base == nil {
		base = topology.Default()
		if p.Topology != "" {
			p.TopologyPath = relTo(dir, p.Topology)
			t, err := loadTopo(p.TopologyPath)
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					errorf(p.topologyPos, "topology", "%s", line)
				}
				base = nil
			} else {
				base = t
			}
		}
	}
	for _, st := range p.Steps {
		ds := st.Drill
		if ds == nil || ds.Ref == "" {
			continue // a human step, or a drill whose name did not parse
		}
		field := st.Field
		topo := base
		if ds.Topology != "" {
			ds.TopologyPath = relTo(dir, ds.Topology)
			t, err := loadTopo(ds.TopologyPath)
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					errorf(ds.topologyPos, field+".topology", "%s", line)
				}
				topo = nil
			} else {
				topo = t
			}
		}
		dr, err := p.loadDrill(dir, ds)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				errorf(ds.refPos, field+".drill", "%s", line)
			}
			continue
		}
		if topo == nil {
			continue // its topology is broken: reported above
		}
		resolved, err := dr.Resolve(topo)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				errorf(ds.refPos, field+".drill", "does not fit topology %s: %s", topo.Name, line)
			}
			continue
		}
		good := true
		for _, k := range slices.Sorted(maps.Keys(ds.Set)) {
			if err := resolved.Set(k, ds.Set[k]); err != nil {
				s := ds.setPos[k]
				errorf(s.ValuePos(), s.Field, "%s", yamlpos.Messages(err))
				good = false
				continue
			}
			dr.Settings[k] = ds.Set[k]
		}
		for k, v := range ds.Budgets {
			dr.Budgets[k] = v
		}
		if good {
			ds.Drill, ds.Resolved = dr, resolved
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return errs
	}
	return nil
}

// loadDrill reads a built-in drill by name, or a drill file by path (the rule of `drill run`: a
// name ending in .yaml or .yml, or holding a slash, is a file).
func (p *Plan) loadDrill(dir string, ds *DrillStep) (*spec.Drill, error) {
	ref := ds.Ref
	var (
		dr  *spec.Drill
		err error
	)
	if strings.HasSuffix(ref, ".yaml") || strings.HasSuffix(ref, ".yml") || strings.ContainsRune(ref, '/') {
		ds.Path = relTo(dir, ref)
		if _, statErr := os.Stat(ds.Path); statErr != nil {
			return nil, fmt.Errorf("unknown drill %q: no such drill file (%s)", ref, ds.Path)
		}
		dr, err = spec.Load(ds.Path)
	} else {
		if !slices.Contains(builtin.Names(), ref) {
			return nil, fmt.Errorf("unknown drill %q: not a built-in drill (built-in: %s) and not a drill file (a file name ends in .yaml)",
				ref, strings.Join(builtin.Names(), ", "))
		}
		dr, err = builtin.Load(ref)
	}
	if err != nil {
		return nil, err
	}
	if dr.Settings == nil {
		dr.Settings = map[string]string{}
	}
	if dr.Budgets == nil {
		dr.Budgets = check.Budgets{}
	}
	return dr, nil
}

// relTo resolves path against dir unless it is absolute.
func relTo(dir, path string) string {
	if filepath.IsAbs(path) || dir == "" {
		return path
	}
	return filepath.Join(dir, path)
}
