package docker

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/goccy/go-yaml"

	"github.com/drillworks/drill/topology"
)

// composeFile is the subset of the Compose specification drill writes. It has no top-level
// version: the Compose Specification made it obsolete, and docker-compose from 1.27 on (1.29 is
// Debian's) as well as Compose v2 read it so, static addresses, IPAM and init included.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Networks map[string]composeNetwork `yaml:"networks"`
}

type composeService struct {
	Image         string                           `yaml:"image"`
	ContainerName string                           `yaml:"container_name"`
	Hostname      string                           `yaml:"hostname"`
	Init          bool                             `yaml:"init"`
	Command       []string                         `yaml:"command"`
	Labels        map[string]string                `yaml:"labels"`
	Volumes       []string                         `yaml:"volumes"`
	Ports         []string                         `yaml:"ports,omitempty"`
	Networks      map[string]composeServiceNetwork `yaml:"networks"`
	DependsOn     []string                         `yaml:"depends_on,omitempty"`
	CapDrop       []string                         `yaml:"cap_drop"`
	SecurityOpt   []string                         `yaml:"security_opt"`
	ReadOnly      bool                             `yaml:"read_only"`
	Tmpfs         []string                         `yaml:"tmpfs"`
}

type composeServiceNetwork struct {
	IPv4Address string   `yaml:"ipv4_address"`
	Aliases     []string `yaml:"aliases,omitempty"`
}

type composeNetwork struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
	IPAM   composeIPAM       `yaml:"ipam"`
}

type composeIPAM struct {
	Config []composeIPAMConfig `yaml:"config"`
}

type composeIPAMConfig struct {
	Subnet  string `yaml:"subnet"`
	Gateway string `yaml:"gateway"`
}

// ExportCompose writes a Compose file that runs plan (which must have Docker addresses: see
// docker.NewPlan) exactly as the docker runtime would: the same image, networks,
// addresses, labels and agent command. The plan itself is mounted from ./plan.json and each node's
// data from ./data/<node>, next to the compose file.
func ExportCompose(w io.Writer, plan *topology.Plan, imageRef string) error {
	t := plan.Topology
	if !isDockerPlan(plan) {
		return fmt.Errorf("compose export: the plan has no Docker addresses")
	}
	for _, r := range t.Regions {
		if r.DockerHost != "" {
			// A Compose file runs on one engine; the runtime spreads such a topology itself.
			return fmt.Errorf("compose export: region %s runs on docker_host %s: a Compose file describes one engine (use drill up, which places each region on its engine)", r.Name, r.DockerHost)
		}
	}
	f := composeFile{Services: map[string]composeService{}, Networks: map[string]composeNetwork{}}
	netLabels := func() map[string]string {
		return objectLabels(t.Name, plan.RunID, RoleNetwork, "")
	}
	f.Networks[wanNetwork] = composeNetwork{Name: networkName(t.Name, wanNetwork), Labels: netLabels(),
		IPAM: composeIPAM{Config: []composeIPAMConfig{{Subnet: wanNetworkPrefix(t, 0).String(), Gateway: wanGateway(t, 0).String()}}}}
	for _, reg := range t.RegionNames() {
		p := regionNetwork(t, reg)
		gw := p.Addr().As4()
		gw[3] = 1
		f.Networks[reg] = composeNetwork{Name: networkName(t.Name, reg), Labels: netLabels(),
			IPAM: composeIPAM{Config: []composeIPAMConfig{{Subnet: p.String(), Gateway: netip.AddrFrom4(gw).String()}}}}
	}
	for _, n := range t.Nodes() {
		s := composeService{
			Image: imageRef, ContainerName: containerName(t.Name, n.Name), Hostname: n.Name, Init: true,
			Command: nodeCommand(n, boundPlanPath),
			Labels:  objectLabels(t.Name, plan.RunID, string(n.Role), n.Name),
			// As the docker runtime's containers (ContainerSpec.Hardened).
			CapDrop: hardenedCapDrop, SecurityOpt: hardenedSecurityOpt, ReadOnly: true,
			Tmpfs:    []string{hardenedTmpfs + ":" + hardenedTmpfsOpts},
			Volumes:  []string{"./plan.json:/plan.json:ro", "./data/" + n.Name + ":/data"},
			Networks: map[string]composeServiceNetwork{wanNetwork: {IPv4Address: n.IP.String(), Aliases: []string{n.Name}}},
		}
		switch n.Role {
		case topology.RoleWAN:
			for _, reg := range t.RegionNames() {
				s.Networks[reg] = composeServiceNetwork{IPv4Address: regionAddr(t, reg, n).String()}
			}
			s.Ports = []string{"127.0.0.1::" + strconv.Itoa(topology.PortWANAPI) + "/tcp"}
		case topology.RoleWitness:
		default:
			s.Networks[n.Region] = composeServiceNetwork{IPv4Address: regionAddr(t, n.Region, n).String(), Aliases: []string{n.Name}}
			s.DependsOn = []string{"wan"} // every cross-site link goes through it
		}
		if n.Role == topology.RoleDNS {
			p := strconv.Itoa(topology.PortDNS)
			s.Ports = []string{"127.0.0.1::" + p + "/udp", "127.0.0.1::" + p + "/tcp"}
		}
		f.Services[n.Name] = s
	}
	b, err := yaml.MarshalWithOptions(f, yaml.IndentSequence(true))
	if err != nil {
		return fmt.Errorf("compose export: %w", err)
	}
	header := fmt.Sprintf("# Generated by `drill compose export` for topology %s (run %s).\n"+
		"# Build the image first with `drill image build` (%s), keep plan.json (it holds the gossip key and\n"+
		"# the control secret) next to this file, then `docker compose up -d`.\n", t.Name, plan.RunID, imageRef)
	_, err = io.WriteString(w, header+string(b))
	return err
}
