package yamlpos

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		err  Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Column: 5, Field: "x.y", Msg: "bad"}, "a.yaml:3:5: x.y: bad"},
		{Error{Line: 3, Column: 5, Msg: "bad"}, "3:5: bad"},
		{Error{File: "a.yaml", Field: "x", Msg: "bad"}, "a.yaml: x: bad"},
		{Error{Msg: "bad"}, "bad"},
	}
	for _, c := range cases {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}

func TestErrorListSortUnwrapMessages(t *testing.T) {
	l := ErrorList{
		{Line: 4, Column: 1, Msg: "d"},
		{Line: 2, Column: 7, Msg: "b"},
		{Line: 2, Column: 3, Msg: "a"},
		{Line: 4, Column: 1, Msg: "e"}, // same place as d: stays after it
	}
	l.Sort()
	var msgs []string
	for _, e := range l {
		msgs = append(msgs, e.Msg)
	}
	if got := strings.Join(msgs, ","); got != "a,b,d,e" {
		t.Fatalf("sorted = %s, want a,b,d,e", got)
	}
	wrapped := fmt.Errorf("load: %w", l.Err())
	var one *Error
	if !errors.As(wrapped, &one) || one.Msg != "a" {
		t.Fatalf("errors.As *Error = %v, want the first problem", one)
	}
	var list ErrorList
	if !errors.As(wrapped, &list) || len(list) != 4 {
		t.Fatalf("errors.As ErrorList = %v", list)
	}
	if got := Messages(wrapped); got != "a; b; d; e" {
		t.Errorf("Messages = %q", got)
	}
	if got := Messages(errors.New("plain")); got != "plain" {
		t.Errorf("Messages(plain) = %q", got)
	}
	if ErrorList(nil).Err() != nil {
		t.Error("empty list: Err() is not nil")
	}
}

// decode runs Root on data with the given top-level fields and returns the decoder and fields.
func decode(t *testing.T, data string, allowed ...string) (*Decoder, map[string]Entry) {
	t.Helper()
	d := NewDecoder("f.yaml")
	body, ok := d.Document([]byte(data), "test")
	if !ok {
		return d, nil
	}
	fields, _, _ := d.Root(body, "empty test file", allowed)
	return d, fields
}

func errText(d *Decoder) string { return d.Errs.Error() }

func TestDocumentAndRoot(t *testing.T) {
	d, _ := decode(t, "a: [1\n")
	if len(d.Errs) != 1 || d.Errs[0].Line == 0 || !strings.HasPrefix(errText(d), "f.yaml:") {
		t.Errorf("syntax error: %q", errText(d))
	}
	d, _ = decode(t, "a: 1\n---\nb: 2\n", "a")
	if got := errText(d); got != "f.yaml:3:1: a test file holds exactly one YAML document" {
		t.Errorf("two documents: %q", got)
	}
	d, _ = decode(t, "")
	if got := errText(d); got != "f.yaml:1:1: empty test file" {
		t.Errorf("empty: %q", got)
	}
	d, _ = decode(t, "- a\n")
	if got := errText(d); got != `f.yaml:1:1: must be a mapping, not a list` {
		t.Errorf("not a mapping: %q", got)
	}
}

func TestMappingProblems(t *testing.T) {
	d, fields := decode(t, "a: 1\nzz: 2\na: 3\n<<: {b: 1}\n~: 4\nb: *nope\n", "a", "b")
	want := []string{
		`f.yaml:2:1: zz: unknown field "zz" (valid: a, b)`,
		`f.yaml:3:1: a: duplicate key "a" (first at line 1)`,
		`f.yaml:4:1: merge keys (<<) are not supported`,
		`f.yaml:5:1: keys must be plain names, not an empty value`,
		`f.yaml:6:4: b: unknown alias *nope`,
	}
	if got := errText(d); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if len(fields) != 1 || fields["a"].KeyPos != (Pos{Line: 1, Column: 1}) {
		t.Errorf("fields = %v, want only the first a", fields)
	}
}

func TestScalars(t *testing.T) {
	data := `
s: hello
n: 7
f: 2.5
b: true
dur: 1500ms
tagged: !!str 3s
anchored: &d 10s
alias: *d
list: [1, *d, x]
empty:
`
	d, fields := decode(t, data)
	if len(d.Errs) != 0 {
		t.Fatalf("errors: %v", d.Errs)
	}
	if s, ok := d.Str(fields["s"]); !ok || s != "hello" {
		t.Errorf("Str = %q %v", s, ok)
	}
	if n, ok := d.Integer(fields["n"], 1, 10); !ok || n != 7 {
		t.Errorf("Integer = %d %v", n, ok)
	}
	if f, ok := d.Number(fields["f"], ""); !ok || f != 2.5 {
		t.Errorf("Number = %v %v", f, ok)
	}
	if b, ok := d.Bool(fields["b"]); !ok || !b {
		t.Errorf("Bool = %v %v", b, ok)
	}
	for key, want := range map[string]time.Duration{"dur": 1500 * time.Millisecond, "tagged": 3 * time.Second, "anchored": 10 * time.Second, "alias": 10 * time.Second} {
		if v, ok := d.Duration(fields[key], true); !ok || v != want {
			t.Errorf("Duration(%s) = %v %v, want %v", key, v, ok, want)
		}
	}
	items, ok := d.List(fields["list"])
	if !ok || len(items) != 3 || items[1].Field != "list[1]" || items[2].KeyPos != (Pos{Line: 10, Column: 15}) {
		t.Errorf("List = %v %v", items, ok)
	}
	if len(d.Errs) != 0 {
		t.Fatalf("errors: %v", d.Errs)
	}

	// Every reader reports a wrong value at the value, and an empty one at its key.
	d.Str(fields["empty"])
	d.Integer(fields["n"], 8, 9)
	d.Number(fields["s"], " (per second)")
	d.Bool(fields["n"])
	d.Duration(fields["n"], true)
	d.Duration(fields["s"], true)
	d.List(fields["s"])
	want := []string{
		`f.yaml:11:1: empty: missing value`,
		`f.yaml:3:4: n: must be between 8 and 9, not 7`,
		`f.yaml:2:4: s: must be a number (per second), not "hello"`,
		`f.yaml:3:4: n: must be true or false, not "7"`,
		`f.yaml:3:4: n: invalid duration "7": missing unit (use e.g. 7s)`,
		`f.yaml:2:4: s: invalid duration "hello" (use e.g. 500ms, 10s, 2m)`,
		`f.yaml:2:4: s: must be a list, not "hello"`,
	}
	if got := errText(d); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestNodePosAndDescribe(t *testing.T) {
	d, fields := decode(t, "m:\n  x: 1\n  y: [a]\nt: !!str v\n")
	if len(d.Errs) != 0 {
		t.Fatalf("errors: %v", d.Errs)
	}
	// A block mapping points at its first key, not at its first colon.
	if got := fields["m"].ValuePos(); got != (Pos{Line: 2, Column: 3}) {
		t.Errorf("block mapping at %s, want 2:3", got)
	}
	// A tagged value points at the value, not at its tag (column 4).
	if got := fields["t"].ValuePos(); got.Line != 4 || got.Column <= 4 {
		t.Errorf("tagged value at %s, want past the tag at 4:4", got)
	}
	if got := NodePos(nil); got != (Pos{Line: 1, Column: 1}) {
		t.Errorf("nil at %s", got)
	}
	if got := Describe(fields["m"].Value); got != "a mapping" {
		t.Errorf("Describe(mapping) = %q", got)
	}
	if got := Describe(nil); got != "an empty value" {
		t.Errorf("Describe(nil) = %q", got)
	}
	if got := ChildField("", "a"); got != "a" {
		t.Errorf("ChildField = %q", got)
	}
	if got := ItemField(ChildField("a", "b"), 2); got != "a.b[2]" {
		t.Errorf("ItemField = %q", got)
	}
}

func TestReadFileLimit(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/big.yaml"
	if err := os.WriteFile(path, make([]byte, 1025), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path, "drill file", 1024)
	var e *Error
	if !errors.As(err, &e) || e.File != path || !strings.Contains(e.Msg, "drill file is over the 1024-byte limit") {
		t.Fatalf("oversized file: %v, want an *Error naming the file and the limit", err)
	}
	if b, err := ReadFile(path, "drill file", 1025); err != nil || len(b) != 1025 {
		t.Fatalf("file at the limit: %d bytes, %v", len(b), err)
	}
	if _, err := ReadFile(dir+"/missing.yaml", "drill file", 1024); !errors.As(err, &e) || e.File != dir+"/missing.yaml" || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
