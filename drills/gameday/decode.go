package gameday

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// maxAliasDepth bounds alias chains, so a crafted file cannot loop the decoder.
const maxAliasDepth = 32

// Pos is a 1-based line and column in a plan file.
type Pos struct {
	Line   int
	Column int
}

// String formats the position as LINE:COL.
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Column) }

// Error is one problem in a plan file: where it is and what is wrong. The CLI maps it (and
// ErrorList) to exit code 2: nothing has started when a plan is rejected.
type Error struct {
	// File is the plan file's name as given to Parse or Load.
	File string
	// Line and Column are 1-based; 0 when there is no position (e.g. an unreadable file).
	Line   int
	Column int
	// Field is the path of the offending setting, e.g. drills[2].set.fencing; empty for a YAML
	// syntax error.
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error formats the problem as FILE:LINE:COL: FIELD: MSG, leaving out the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Line > 0 && e.File != "":
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	case e.Line > 0:
		fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
	case e.File != "":
		b.WriteString(e.File + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a plan, sorted by position. errors.As finds an ErrorList,
// or any *Error in it.
type ErrorList []*Error

// Error is one problem per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the single problems to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// sortErrors orders problems by position, keeping the order of problems at the same place.
func sortErrors(l ErrorList) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && less(l[j], l[j-1]); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

func less(a, b *Error) bool {
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Column < b.Column
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
}

func (d *decoder) errorf(at Pos, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.source, Line: at.Line, Column: at.Column, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// entry is one key/value pair of a mapping (or one list item); value is resolved (tags,
// anchors, aliases).
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

// mapping returns a mapping's entries, reporting a non-mapping, duplicate keys and keys not in
// allowed (nil allows any key). ok is false when node is not a mapping at all.
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
func (d *decoder) number(e entry) (float64, bool) {
	switch n := e.value.(type) {
	case *ast.IntegerNode:
		switch i := n.Value.(type) {
		case int64:
			return float64(i), true
		case uint64:
			return float64(i), true
		}
	case *ast.FloatNode:
		return n.Value, true
	}
	d.errorf(e.valuePos(), e.field, "must be a number (the unit is in the budget's name), not %s", describe(e.value))
	return 0, false
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

// validName reports whether s looks like a plan, region or drill name: lower-case letters,
// digits and dashes, starting and ending with a letter or digit.
func validName(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}
