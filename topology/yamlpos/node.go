package yamlpos

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"
)

// NodePos is where errors about a node point. A block mapping's own token is its first colon, so
// it points at its first key instead; a tag or anchor points at the value it marks. A node
// without a position (nil) points at the start of the file.
func NodePos(node ast.Node) Pos {
	switch n := node.(type) {
	case nil:
		return Pos{Line: 1, Column: 1}
	case *ast.MappingNode:
		if !n.IsFlowStyle && len(n.Values) > 0 {
			return NodePos(n.Values[0].Key)
		}
	case *ast.MappingValueNode:
		return NodePos(n.Key)
	case *ast.MappingKeyNode:
		if n.Value != nil {
			return NodePos(n.Value)
		}
	case *ast.TagNode:
		return NodePos(n.Value)
	case *ast.AnchorNode:
		return NodePos(n.Value)
	}
	tk := node.GetToken()
	if tk == nil || tk.Position == nil {
		return Pos{Line: 1, Column: 1}
	}
	return Pos{Line: tk.Position.Line, Column: tk.Position.Column}
}

// KeyText is a mapping key's text; ok is false for a key that is not a plain scalar.
func KeyText(key ast.MapKeyNode) (string, bool) {
	if k, ok := key.(*ast.MappingKeyNode); ok {
		return ScalarText(k.Value)
	}
	return ScalarText(key)
}

// ScalarText is a scalar's text as written; ok is false for mappings, lists and nulls.
func ScalarText(node ast.Node) (string, bool) {
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

// IsNull reports whether a node is an empty value: absent, null or ~.
func IsNull(node ast.Node) bool {
	_, null := node.(*ast.NullNode)
	return node == nil || null
}

// IsNumber reports whether a node is an integer or decimal number.
func IsNumber(node ast.Node) bool {
	switch node.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		return true
	}
	return false
}

// KindName names the shape of a node for error messages: mapping, list or value.
func KindName(node ast.Node) string {
	switch node.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "mapping"
	case *ast.SequenceNode:
		return "list"
	}
	return "value"
}

// Describe is a node as quoted in error messages: a scalar's text, or its shape.
func Describe(node ast.Node) string {
	if text, ok := ScalarText(node); ok {
		return fmt.Sprintf("%q", text)
	}
	if IsNull(node) {
		return "an empty value"
	}
	return "a " + KindName(node)
}

// ChildField is the path of field name inside the mapping at path parent.
func ChildField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// ItemField is the path of item i of the list at path parent.
func ItemField(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
