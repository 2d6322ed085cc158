package spec

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/drillworks/drill/topology"
)

// defaultTopology is the embedded default topology, against which Parse checks setting values.
func defaultTopology() *topology.Topology { return topology.Default() }

// settingMessage is the message of a topology.Set error, without the topology's field path.
func settingMessage(err error) string {
	var list topology.ErrorList
	if !errors.As(err, &list) {
		return err.Error()
	}
	msgs := make([]string, len(list))
	for i, e := range list {
		msgs[i] = e.Msg
	}
	return strings.Join(msgs, "; ")
}

// Resolve checks the drill against the topology it will run on and returns that topology with
// the drill's settings applied (t itself is not changed; the copy shares t's region and link
// slices, which settings never modify). Every region and node the drill names must exist in t,
// and every setting must be valid for t. Errors are an ErrorList with positions in the drill file.
func (dr *Drill) Resolve(t *topology.Topology) (*topology.Topology, error) {
	out := *t
	var errs ErrorList
	keys := make([]string, 0, len(dr.Settings))
	for k := range dr.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := out.Set(k, dr.Settings[k]); err != nil {
			p := dr.settingPos[k]
			errs = append(errs, &Error{File: dr.Source, Line: p.Line, Column: p.Column, Field: "settings." + k, Msg: settingMessage(err)})
		}
	}
	for _, r := range dr.refs {
		if r.node {
			if _, ok := t.Node(r.name); !ok {
				errs = append(errs, &Error{File: dr.Source, Line: r.pos.Line, Column: r.pos.Column, Field: r.field,
					Msg: fmt.Sprintf("topology %s has no node %q (nodes: %s)", t.Name, r.name, strings.Join(topology.SortedNodeNames(t.Nodes()), ", "))})
			}
			continue
		}
		if _, ok := t.Region(r.name); !ok {
			errs = append(errs, &Error{File: dr.Source, Line: r.pos.Line, Column: r.pos.Column, Field: r.field,
				Msg: fmt.Sprintf("topology %s has no region %q (regions: %s)", t.Name, r.name, strings.Join(t.RegionNames(), ", "))})
		}
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
	return &out, nil
}
