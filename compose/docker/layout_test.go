package docker

import (
	"net/netip"
	"testing"

	"github.com/drillworks/drill/topology"
)

func TestPlanAddresses(t *testing.T) {
	base := topology.Default()
	p, err := NewPlan(base, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if base.Network.Space != nil {
		t.Fatal("NewPlan changed the caller's topology")
	}
	dt := p.Topology
	if !isDockerPlan(p) {
		t.Fatal("docker plan without docker addressing")
	}
	want := map[string]string{
		"wan": "10.77.128.1", "witness": "10.77.250.1",
		"us-east-web-1": "10.77.129.10", "us-east-db-1": "10.77.129.20", "eu-west-dns-1": "10.77.130.30",
	}
	for name, ip := range want {
		n, ok := dt.Node(name)
		if !ok || n.IP.String() != ip {
			t.Errorf("node %s at %v, want %s", name, n.IP, ip)
		}
	}
	wanNet := wanNetworkPrefix(dt, 0)
	for _, n := range dt.Nodes() {
		if !wanNet.Contains(n.IP) {
			t.Errorf("node %s at %s is outside the WAN network %s", n.Name, n.IP, wanNet)
		}
		if n.Site() != "wan" && !dt.SitePrefix(n.Site()).Contains(n.IP) {
			t.Errorf("node %s at %s is outside its site prefix %s", n.Name, n.IP, dt.SitePrefix(n.Site()))
		}
	}
	if got := regionNetwork(dt, "eu-west"); got != netip.MustParsePrefix("10.77.2.0/24") {
		t.Errorf("eu-west network %s", got)
	}
	if got, _ := p.DialAddr("us-east", "eu-west-db-1"); got != "10.77.1.100:7100" {
		t.Errorf("us-east reaches eu-west-db-1 at %s, want its link on the us-east network", got)
	}
	if got, _ := p.DialAddr("witness", "us-east-db-1"); got != "10.77.128.1:7100" {
		t.Errorf("witness reaches us-east-db-1 at %s", got)
	}
	if got, _ := p.DialAddr("us-east", "us-east-db-1"); got != "10.77.129.20:7000" {
		t.Errorf("same-site db addr %s", got)
	}
	for _, l := range p.Links {
		ap := netip.MustParseAddrPort(l.Listen)
		if l.FromSite != "witness" && !regionNetwork(dt, l.FromSite).Contains(ap.Addr()) {
			t.Errorf("link %s listens on %s, outside %s's network", l.Name, l.Listen, l.FromSite)
		}
	}
	// The local plan keeps the loopback layout.
	lp, err := topology.NewPlan(base, topology.PlanOptions{Runtime: "local", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := lp.DialAddr("us-east", "eu-west-db-1"); got != "127.77.1.100:7000" {
		t.Errorf("local link %s", got)
	}
	if isDockerPlan(lp) {
		t.Error("a loopback plan is taken for a Docker one")
	}
}
