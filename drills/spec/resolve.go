package spec

import (
	"slices"
	"sort"
	"strings"

	"github.com/drillworks/drill/compose/fault"
	"github.com/drillworks/drill/topology"
	"github.com/drillworks/drill/topology/yamlpos"
)

// defaultTopology is the embedded default topology, against which Parse checks setting values.
func defaultTopology() *topology.Topology { return topology.Default() }

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
			// The message without the topology's field path: the drill's own field is given.
			errs = append(errs, yamlpos.Errorf(dr.Source, dr.settingPos[k], "settings."+k, "%s", yamlpos.Messages(err)))
		}
	}
	for _, r := range dr.refs {
		if r.node {
			if _, ok := t.Node(r.name); !ok && r.name != fault.TargetPrimary {
				errs = append(errs, yamlpos.Errorf(dr.Source, r.pos, r.field,
					"topology %s has no node %q (nodes: %s)", t.Name, r.name, strings.Join(topology.SortedNodeNames(t.Nodes()), ", ")))
			}
			continue
		}
		if r.site && slices.Contains(t.Sites(), r.name) {
			continue
		}
		if r.site {
			errs = append(errs, yamlpos.Errorf(dr.Source, r.pos, r.field,
				"topology %s has no site %q (sites: %s)", t.Name, r.name, strings.Join(t.Sites(), ", ")))
			continue
		}
		if _, ok := t.Region(r.name); !ok {
			errs = append(errs, yamlpos.Errorf(dr.Source, r.pos, r.field,
				"topology %s has no region %q (regions: %s)", t.Name, r.name, strings.Join(t.RegionNames(), ", ")))
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return &out, nil
}
