package topology

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestValidate checks topologies changed in code: errors name the field and carry no position.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Topology)
		want []wantErr // line and column are always 0
	}{
		{"default is valid", func(*Topology) {}, nil},
		{"bad fencing", func(t *Topology) { t.Design.Fencing = "stonith" },
			[]wantErr{{0, 0, "design.fencing", `must be lease or none, got "stonith"`}}},
		{"zero db nodes", func(t *Topology) { t.Regions[1].Nodes.DB = 0 },
			[]wantErr{{0, 0, "regions[1].nodes.db", "must be between 1 and 9, got 0"}}},
		{"added duplicate region", func(t *Topology) {
			t.Regions = append(t.Regions, Region{Name: "us-east", Nodes: NodeCounts{Web: 1, DB: 1}})
		}, []wantErr{{0, 0, "regions[2].name", `duplicate region "us-east"`}}},
		{"overlapping subnet", func(t *Topology) {
			t.Regions[1].ClientSubnets = append(t.Regions[1].ClientSubnets, "203.0.113.0/25")
		}, []wantErr{{0, 0, "regions[1].client_subnets[2]", `overlaps 203.0.113.0/24 of region "us-east"`}}},
		{"WAN too slow for the fast gossip profile", func(t *Topology) {
			t.WAN.Latency, t.WAN.Jitter = Duration(300*time.Millisecond), Duration(20*time.Millisecond)
		}, []wantErr{{0, 0, "wan.latency", "latency + jitter 320ms exceeds the 225ms one-way the fast gossip profile tolerates; set gossip.profile: wan"}}},
		{"slow WAN with the wan gossip profile", func(t *Topology) {
			t.WAN.Latency, t.Gossip.Profile = Duration(300*time.Millisecond), ProfileWAN
		}, nil},
		{"primary gone", func(t *Topology) { t.PrimaryRegion = "ap-south" },
			[]wantErr{{0, 0, "primary_region", `"ap-south" is not a region (regions: us-east, eu-west)`}}},
		{"empty settings", func(t *Topology) {
			t.Network.DockerBase = ""
			t.DNS.Zone = ""
			t.Design.LeaseDuration = 0
		}, []wantErr{
			{0, 0, "network.docker_base", "is required"},
			{0, 0, "dns.zone", "is required"},
			{0, 0, "design.lease_duration", "must be positive, got 0s"},
		}},
		{"link to an unknown region", func(t *Topology) {
			t.WAN.Links = []WANLink{{Between: []string{"us-east", "mars"}, Latency: Duration(100 * time.Millisecond)}}
		}, []wantErr{{0, 0, "wan.links[0].between[1]", `"mars" is not a region`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			top := Default()
			tc.edit(top)
			err := top.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			checkErrors(t, err, "", tc.want)
		})
	}
}

func TestValidateErrorText(t *testing.T) {
	top := Default()
	top.Design.Fencing = "x"
	err := top.Validate()
	if got, want := err.Error(), `design.fencing: must be lease or none, got "x"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.Field != "design.fencing" {
		t.Errorf("errors.As(*Error) = %v", e)
	}
}

func TestDockerHostValidation(t *testing.T) {
	for h, ok := range map[string]bool{
		"unix:///var/run/docker.sock": true, "tcp://10.0.0.5:2376": true, "ssh://drill@eu.example": true,
		"http://nope": false, "tcp://hostonly": false, "unix://relative": false, "ssh://": false,
	} {
		if msg := checkDockerHost(h); (msg == "") != ok {
			t.Errorf("docker_host %q: got %q, want ok=%v", h, msg, ok)
		}
	}
	src := "name: dh\nregions:\n  - name: us-east\n    client_subnets: [203.0.113.0/24]\n    docker_host: http://nope\n"
	_, err := Parse("dh.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "dh.yaml:5:18: regions[0].docker_host:") {
		t.Fatalf("want a positioned docker_host error, got %v", err)
	}
}
