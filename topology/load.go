package topology

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Values of optional settings left out of a topology file.
const (
	defaultLoopbackBase   = "127.77.0.0/16"
	defaultDockerBase     = "10.77.0.0/16"
	defaultWANLatency     = 40 * time.Millisecond
	defaultGossipProfile  = ProfileFast
	defaultRejoinInterval = 2 * time.Second
	defaultZone           = "drill.test."
	defaultTTL            = 5 * time.Second
	defaultDegradedTTL    = 1 * time.Second
	defaultHoldDown       = 3 * time.Second
	defaultFailoverAfter  = 2 * time.Second
	defaultLeaseDuration  = 3 * time.Second
	defaultWebNodes       = 2
	defaultDBNodes        = 1
	defaultDNSNodes       = 1
)

// maxAliasDepth bounds alias and tag unwrapping, so a hostile file cannot loop the decoder.
const maxAliasDepth = 32

// Load reads and parses the topology file at path.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	return Parse(path, data)
}

// Parse reads a topology from YAML. source names the file in errors and becomes t.Source.
//
// Decoding is strict: unknown fields, duplicate keys and values of the wrong kind are errors.
// Settings left out get their documented defaults (a region without nodes gets 2 web, 1 db and
// 1 dns; a nodes mapping that names only some roles gets the default for the others; a WAN link
// without latency or jitter gets the WAN-wide value). The result is then validated.
//
// On failure the error is an ErrorList of every problem found, sorted by position; each *Error
// carries the line and column of the offending node (for a missing field: of its parent mapping).
func Parse(source string, data []byte) (*Topology, error) {
	// Duplicate keys are detected by the decoder below, so they are reported with a field path and
	// do not stop the search for further problems.
	file, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return nil, ErrorList{syntaxError(source, err)}
	}

	d := &decoder{
		source:    source,
		positions: map[string]pos{},
		present:   map[string]bool{},
		anchors:   map[string]ast.Node{},
		bad:       map[string]bool{},
	}
	var body ast.Node
	if len(file.Docs) > 0 {
		body = file.Docs[0].Body
		for _, doc := range file.Docs[1:] {
			if doc.Body != nil {
				d.fail(nodePos(doc.Body), "", "a topology file holds exactly one YAML document")
				break
			}
		}
	}

	t := &Topology{Source: source}
	d.positions[""] = pos{line: 1, column: 1}
	d.decode(body, reflect.ValueOf(t).Elem(), "", pos{line: 1, column: 1})
	defaulted := applyDefaults(t, d.present)

	errs := d.errs
	for _, e := range validate(t) {
		// A field the decoder already complained about, or one Parse filled with a default, only
		// fails as a consequence of another problem; reporting it again would be noise.
		if d.isBad(e.Field) || defaulted[e.Field] {
			continue
		}
		p := d.locate(e.Field)
		e.File, e.Line, e.Column = source, p.line, p.column
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			if errs[i].Line != errs[j].Line {
				return errs[i].Line < errs[j].Line
			}
			return errs[i].Column < errs[j].Column
		})
		return nil, errs
	}
	return t, nil
}

// syntaxError turns a YAML parser error into an *Error with the position of the offending token.
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

// applyDefaults fills every optional setting the file left out (absent or null) and returns the
// field paths it filled.
func applyDefaults(t *Topology, present map[string]bool) map[string]bool {
	defaulted := map[string]bool{}
	set := func(field string, apply func()) {
		if !present[field] {
			apply()
			defaulted[field] = true
		}
	}
	set("network.loopback_base", func() { t.Network.LoopbackBase = defaultLoopbackBase })
	set("network.docker_base", func() { t.Network.DockerBase = defaultDockerBase })
	for i := range t.Regions {
		nodes := &t.Regions[i].Nodes
		prefix := fmt.Sprintf("regions[%d].nodes.", i)
		set(prefix+"web", func() { nodes.Web = defaultWebNodes })
		set(prefix+"db", func() { nodes.DB = defaultDBNodes })
		set(prefix+"dns", func() { nodes.DNS = defaultDNSNodes })
	}
	set("primary_region", func() {
		if len(t.Regions) > 0 {
			t.PrimaryRegion = t.Regions[0].Name
		}
	})
	set("wan.latency", func() { t.WAN.Latency = Duration(defaultWANLatency) })
	set("wan.jitter", func() { t.WAN.Jitter = 0 })
	for i := range t.WAN.Links {
		link := &t.WAN.Links[i]
		prefix := fmt.Sprintf("wan.links[%d].", i)
		set(prefix+"latency", func() { link.Latency = t.WAN.Latency })
		set(prefix+"jitter", func() { link.Jitter = t.WAN.Jitter })
	}
	set("gossip.profile", func() { t.Gossip.Profile = defaultGossipProfile })
	set("gossip.rejoin_interval", func() { t.Gossip.RejoinInterval = Duration(defaultRejoinInterval) })
	set("dns.zone", func() { t.DNS.Zone = defaultZone })
	set("dns.ttl", func() { t.DNS.TTL = Duration(defaultTTL) })
	set("dns.degraded_ttl", func() { t.DNS.DegradedTTL = Duration(defaultDegradedTTL) })
	set("dns.hold_down", func() { t.DNS.HoldDown = Duration(defaultHoldDown) })
	set("design.replication", func() { t.Design.Replication = ReplicationAsync })
	set("design.fencing", func() { t.Design.Fencing = FencingLease })
	set("design.read_your_writes", func() { t.Design.ReadYourWrites = true })
	set("design.failover_after", func() { t.Design.FailoverAfter = Duration(defaultFailoverAfter) })
	set("design.lease_duration", func() { t.Design.LeaseDuration = Duration(defaultLeaseDuration) })
	return defaulted
}

// pos is a 1-based line and column in the file.
type pos struct {
	line, column int
}

// decoder fills a Go value from the YAML AST by the yaml struct tags, strictly, recording where
// every field was found so that later validation errors can point into the file.
type decoder struct {
	source string
	// positions maps each field path seen in the file to the position errors about it point at.
	positions map[string]pos
	// present holds the field paths with a non-null value: the rest get defaults.
	present map[string]bool
	// anchors are the YAML anchors seen so far, by name, for resolving aliases.
	anchors map[string]ast.Node
	// bad holds the field paths the decoder rejected, whose Go value is therefore incomplete.
	bad  map[string]bool
	errs ErrorList
}

func (d *decoder) fail(at pos, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{
		File: d.source, Line: at.line, Column: at.column, Field: field, Msg: fmt.Sprintf(format, args...),
	})
}

// reject records a value of the wrong shape: the field keeps its zero value.
func (d *decoder) reject(at pos, field, format string, args ...any) {
	d.bad[field] = true
	d.fail(at, field, format, args...)
}

// isBad reports whether field or one of its parents was rejected by the decoder.
func (d *decoder) isBad(field string) bool {
	for {
		if d.bad[field] {
			return true
		}
		if field == "" {
			return false
		}
		field = parentField(field)
	}
}

// locate is where an error about field points: the field's own node, or for a field missing from
// the file, its nearest parent that is in the file.
func (d *decoder) locate(field string) pos {
	for {
		if p, ok := d.positions[field]; ok {
			return p
		}
		if field == "" {
			return pos{line: 1, column: 1}
		}
		field = parentField(field)
	}
}

// parentField strips the last element of a field path: a.b[2] -> a.b, a.b -> a, a -> "".
func parentField(field string) string {
	if strings.HasSuffix(field, "]") {
		if i := strings.LastIndexByte(field, '['); i >= 0 {
			return field[:i]
		}
	}
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		return field[:i]
	}
	return ""
}

func childField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// decode stores node into v. keyPos is where the node's key is, used for errors about a null value
// (whose own token points past the key).
func (d *decoder) decode(node ast.Node, v reflect.Value, field string, keyPos pos) {
	node, ok := d.resolve(node, field, keyPos)
	if !ok {
		return
	}
	if _, isNull := node.(*ast.NullNode); isNull || node == nil {
		// An empty value means "not set": the field keeps its zero value or gets its default.
		d.positions[field] = keyPos
		return
	}
	at := nodePos(node)
	d.positions[field] = at
	d.present[field] = true

	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		text, ok := scalarText(node)
		if !ok {
			d.reject(at, field, "must be a single value, not a %s", kindName(node))
			return
		}
		if err := u.UnmarshalText([]byte(text)); err != nil {
			d.reject(at, field, "%s", err.Error())
		}
		return
	}

	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(node, v, field, at)
	case reflect.Slice:
		seq, ok := node.(*ast.SequenceNode)
		if !ok {
			d.reject(at, field, "must be a list, not a %s", kindName(node))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values)))
		for i, item := range seq.Values {
			d.decode(item, v.Index(i), fmt.Sprintf("%s[%d]", field, i), nodePos(item))
		}
	case reflect.String:
		text, ok := scalarText(node)
		if !ok {
			d.reject(at, field, "must be a string, not a %s", kindName(node))
			return
		}
		v.SetString(text)
	case reflect.Int:
		n, ok := node.(*ast.IntegerNode)
		if !ok {
			d.reject(at, field, "must be an integer, not %s", describe(node))
			return
		}
		switch i := n.Value.(type) {
		case int64:
			v.SetInt(i)
		case uint64:
			if i > math.MaxInt64 {
				d.reject(at, field, "%d is too large", i)
				return
			}
			v.SetInt(int64(i))
		}
	case reflect.Bool:
		b, ok := node.(*ast.BoolNode)
		if !ok {
			d.reject(at, field, "must be true or false, not %s", describe(node))
			return
		}
		v.SetBool(b.Value)
	default:
		// Only reachable if a field of an unsupported type is added to the model.
		panic(fmt.Sprintf("topology: cannot decode into %s", v.Type()))
	}
}

// decodeStruct fills a struct from a mapping, by yaml tags, rejecting unknown and repeated keys.
func (d *decoder) decodeStruct(node ast.Node, v reflect.Value, field string, at pos) {
	entries, ok := mappingEntries(node)
	if !ok {
		d.reject(at, field, "must be a mapping, not %s", describe(node))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := 0; i < v.NumField(); i++ {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	seen := map[string]pos{}
	for _, entry := range entries {
		keyAt := nodePos(entry.Key)
		if entry.Key.IsMergeKey() {
			d.fail(keyAt, field, "merge keys (<<) are not supported")
			continue
		}
		key, ok := keyText(entry.Key)
		if !ok {
			d.fail(keyAt, field, "keys must be plain names, not %s", describe(entry.Key))
			continue
		}
		keyField := childField(field, key)
		if first, dup := seen[key]; dup {
			d.fail(keyAt, keyField, "duplicate key %q (first at line %d)", key, first.line)
			continue
		}
		seen[key] = keyAt
		i, known := fields[key]
		if !known {
			d.fail(keyAt, keyField, "unknown field %q (valid: %s)", key, strings.Join(names, ", "))
			continue
		}
		d.decode(entry.Value, v.Field(i), keyField, keyAt)
	}
}

// resolve follows tags, anchors and aliases to the node holding the value.
func (d *decoder) resolve(node ast.Node, field string, keyPos pos) (ast.Node, bool) {
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
				d.reject(nodePos(n), field, "unknown alias *%s", name)
				return nil, false
			}
			node = target
		default:
			return node, true
		}
	}
	d.reject(keyPos, field, "aliases nested too deeply")
	return nil, false
}

// mappingEntries are the key/value pairs of a mapping node.
func mappingEntries(node ast.Node) ([]*ast.MappingValueNode, bool) {
	switch n := node.(type) {
	case *ast.MappingNode:
		return n.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}, true
	}
	return nil, false
}

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

// kindName names the shape of a node for error messages.
func kindName(node ast.Node) string {
	switch node.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "mapping"
	case *ast.SequenceNode:
		return "list"
	}
	return "value"
}

// describe is a node as quoted in error messages: a scalar's text, or its shape.
func describe(node ast.Node) string {
	if text, ok := scalarText(node); ok {
		return fmt.Sprintf("%q", text)
	}
	return "a " + kindName(node)
}

// nodePos is where errors about a node point. A block mapping's own token is its first colon, so
// it points at its first key instead.
func nodePos(node ast.Node) pos {
	switch n := node.(type) {
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
	}
	tk := node.GetToken()
	if tk == nil || tk.Position == nil {
		return pos{}
	}
	return pos{line: tk.Position.Line, column: tk.Position.Column}
}
