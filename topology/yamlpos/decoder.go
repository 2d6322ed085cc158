package yamlpos

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// maxAliasDepth bounds alias and tag unwrapping, so a crafted file cannot loop the decoder.
const maxAliasDepth = 32

// Decoder walks a YAML AST, collecting every problem with its position instead of stopping at
// the first. File decoders embed it and add their own fields on top.
type Decoder struct {
	// Source names the file in errors.
	Source string
	// Errs is every problem found so far, in the order found (ErrorList.Sort orders them).
	Errs ErrorList
	// anchors are the YAML anchors seen so far, by name, for resolving aliases.
	anchors map[string]ast.Node
}

// NewDecoder is a decoder for the file named source.
func NewDecoder(source string) *Decoder {
	return &Decoder{Source: source, anchors: map[string]ast.Node{}}
}

// Errorf records a problem at position at of field.
func (d *Decoder) Errorf(at Pos, field, format string, args ...any) {
	d.Errs = append(d.Errs, Errorf(d.Source, at, field, format, args...))
}

// Document parses data and returns the body of its one document (nil for an empty file). what
// names the kind of file in errors ("a topology file holds exactly one YAML document"). ok is
// false after a YAML syntax error, the only problem then recorded: nothing else can be decoded.
//
// Duplicate keys are left to Pairs, so they are reported with a field path and do not stop the
// search for further problems.
func (d *Decoder) Document(data []byte, what string) (body ast.Node, ok bool) {
	file, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		d.Errs = append(d.Errs, SyntaxError(d.Source, err))
		return nil, false
	}
	if len(file.Docs) == 0 {
		return nil, true
	}
	for _, doc := range file.Docs[1:] {
		if doc.Body != nil {
			d.Errorf(NodePos(doc.Body), "", "a %s file holds exactly one YAML document", what)
			break
		}
	}
	return file.Docs[0].Body, true
}

// Entry is one key/value pair of a mapping, or one item of a list.
type Entry struct {
	// Key is the mapping key (for a list item: the list's key).
	Key string
	// KeyPos is where the key is (for a list item: where the item is).
	KeyPos Pos
	// Field is the entry's path, e.g. drills[2].set.fencing.
	Field string
	// Value is the entry's value; resolved (tags, anchors and aliases followed) when the entry
	// comes from Mapping or List, as written when it comes from Pairs.
	Value ast.Node
}

// ValuePos is where errors about the value point: the value, or the key for an empty value.
func (e Entry) ValuePos() Pos {
	if IsNull(e.Value) {
		return e.KeyPos
	}
	return NodePos(e.Value)
}

// Resolve follows tags, anchors and aliases to the node holding the value; at is where errors
// about an alias chain that is too long point. ok is false (and the problem recorded) for an
// unknown alias.
func (d *Decoder) Resolve(node ast.Node, at Pos, field string) (ast.Node, bool) {
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
				d.Errorf(NodePos(n), field, "unknown alias *%s", name)
				return nil, false
			}
			node = target
		default:
			return node, true
		}
	}
	d.Errorf(at, field, "aliases nested too deeply")
	return nil, false
}

// Pairs returns a mapping's entries with their values as written, reporting a non-mapping,
// merge keys, keys that are not plain scalars, duplicate keys and keys not in allowed (nil
// allows any key); such entries are left out. ok is false when node is not a mapping at all;
// at is where that error points.
func (d *Decoder) Pairs(node ast.Node, at Pos, field string, allowed []string) ([]Entry, bool) {
	var pairs []*ast.MappingValueNode
	switch n := node.(type) {
	case *ast.MappingNode:
		pairs = n.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{n}
	default:
		d.Errorf(at, field, "must be a mapping, not %s", Describe(node))
		return nil, false
	}
	seen := map[string]Pos{}
	var out []Entry
	for _, pair := range pairs {
		keyAt := NodePos(pair.Key)
		if pair.Key.IsMergeKey() {
			d.Errorf(keyAt, field, "merge keys (<<) are not supported")
			continue
		}
		key, ok := KeyText(pair.Key)
		if !ok {
			d.Errorf(keyAt, field, "keys must be plain names, not %s", Describe(pair.Key))
			continue
		}
		keyField := ChildField(field, key)
		if first, dup := seen[key]; dup {
			d.Errorf(keyAt, keyField, "duplicate key %q (first at line %d)", key, first.Line)
			continue
		}
		seen[key] = keyAt
		if allowed != nil && !slices.Contains(allowed, key) {
			d.Errorf(keyAt, keyField, "unknown field %q (valid: %s)", key, strings.Join(allowed, ", "))
			continue
		}
		out = append(out, Entry{Key: key, KeyPos: keyAt, Field: keyField, Value: pair.Value})
	}
	return out, true
}

// Mapping is Pairs with every value resolved; an entry whose value does not resolve is left out.
func (d *Decoder) Mapping(node ast.Node, at Pos, field string, allowed []string) ([]Entry, bool) {
	pairs, ok := d.Pairs(node, at, field, allowed)
	if !ok {
		return nil, false
	}
	out := pairs[:0]
	for _, e := range pairs {
		value, ok := d.Resolve(e.Value, e.KeyPos, e.Field)
		if !ok {
			continue
		}
		e.Value = value
		out = append(out, e)
	}
	return out, true
}

// Root decodes body, a document's body, as the file's top-level mapping: an empty document is
// the problem empty (e.g. "empty plan file: it needs at least name and drills"), a key not in
// allowed is reported. It returns the entries by key and where the mapping is (for errors about
// a missing field); ok is false when there is no mapping to read.
func (d *Decoder) Root(body ast.Node, empty string, allowed []string) (fields map[string]Entry, at Pos, ok bool) {
	start := Pos{Line: 1, Column: 1}
	if IsNull(body) {
		d.Errorf(start, "", "%s", empty)
		return nil, start, false
	}
	body, ok = d.Resolve(body, start, "")
	if !ok {
		return nil, start, false
	}
	at = NodePos(body)
	entries, ok := d.Mapping(body, at, "", allowed)
	if !ok {
		return nil, at, false
	}
	return Fields(entries), at, true
}

// Fields indexes entries by key.
func Fields(entries []Entry) map[string]Entry {
	out := make(map[string]Entry, len(entries))
	for _, e := range entries {
		out[e.Key] = e
	}
	return out
}

// List returns a list's items, resolved; an item that does not resolve is left out.
func (d *Decoder) List(e Entry) ([]Entry, bool) {
	seq, ok := e.Value.(*ast.SequenceNode)
	if !ok {
		d.Errorf(e.ValuePos(), e.Field, "must be a list, not %s", Describe(e.Value))
		return nil, false
	}
	var out []Entry
	for i, item := range seq.Values {
		field := ItemField(e.Field, i)
		at := NodePos(item)
		value, ok := d.Resolve(item, at, field)
		if !ok {
			continue
		}
		out = append(out, Entry{Key: e.Key, KeyPos: at, Field: field, Value: value})
	}
	return out, true
}

// Str reads a scalar as text.
func (d *Decoder) Str(e Entry) (string, bool) {
	if IsNull(e.Value) {
		d.Errorf(e.KeyPos, e.Field, "missing value")
		return "", false
	}
	text, ok := ScalarText(e.Value)
	if !ok {
		d.Errorf(e.ValuePos(), e.Field, "must be a single value, not %s", Describe(e.Value))
		return "", false
	}
	return text, true
}

// Duration reads a Go duration (500ms, 10s, 2m); positive requires > 0, else >= 0.
func (d *Decoder) Duration(e Entry, positive bool) (time.Duration, bool) {
	text, ok := d.Str(e)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(text)
	switch {
	case err != nil && IsNumber(e.Value):
		d.Errorf(e.ValuePos(), e.Field, "invalid duration %q: missing unit (use e.g. %ss)", text, text)
		return 0, false
	case err != nil:
		d.Errorf(e.ValuePos(), e.Field, "invalid duration %q (use e.g. 500ms, 10s, 2m)", text)
		return 0, false
	case positive && v <= 0:
		d.Errorf(e.ValuePos(), e.Field, "must be longer than 0, not %s", text)
		return 0, false
	case v < 0:
		d.Errorf(e.ValuePos(), e.Field, "must not be negative, not %s", text)
		return 0, false
	}
	return v, true
}

// Integer reads an integer in [lo, hi].
func (d *Decoder) Integer(e Entry, lo, hi int) (int, bool) {
	n, isInt := e.Value.(*ast.IntegerNode)
	if !isInt {
		d.Errorf(e.ValuePos(), e.Field, "must be an integer, not %s", Describe(e.Value))
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
		d.Errorf(e.ValuePos(), e.Field, "must be between %d and %d, not %d", lo, hi, v)
		return 0, false
	}
	return int(v), true
}

// Number reads an integer or decimal number; unit is said after "must be a number" in the error
// for anything else, e.g. " (writes per second per client)".
func (d *Decoder) Number(e Entry, unit string) (float64, bool) {
	switch n := e.Value.(type) {
	case *ast.IntegerNode:
		switch i := n.Value.(type) {
		case int64:
			return float64(i), true
		case uint64:
			return float64(i), true
		}
		return 0, true
	case *ast.FloatNode:
		return n.Value, true
	}
	d.Errorf(e.ValuePos(), e.Field, "must be a number%s, not %s", unit, Describe(e.Value))
	return 0, false
}

// Bool reads true or false.
func (d *Decoder) Bool(e Entry) (bool, bool) {
	b, ok := e.Value.(*ast.BoolNode)
	if !ok {
		d.Errorf(e.ValuePos(), e.Field, "must be true or false, not %s", Describe(e.Value))
		return false, false
	}
	return b.Value, true
}
