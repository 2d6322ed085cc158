package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Engine is every Docker call drill makes, in drill's own types: nothing outside this file
// imports the Docker client (github.com/moby/moby/client, which speaks to engines from API 1.40,
// Docker 19.03, on).
type Engine interface {
	// Ping checks the engine answers (and negotiates the API version).
	Ping(ctx context.Context) error
	// ID is the engine's identity: its ID (from the host's /etc/docker/key.json, so two engines
	// of one host share it) and its data root. Two addresses of one engine give the same.
	ID(ctx context.Context) (string, error)
	// ImageExists reports whether ref is a local image.
	ImageExists(ctx context.Context, ref string) (bool, error)
	// ImageImport makes image ref from a root-filesystem tar, with Dockerfile-style changes.
	ImageImport(ctx context.Context, rootfs io.Reader, ref string, changes []string) error
	// ImageRemove removes image ref; callers only pass drill's own node images.
	ImageRemove(ctx context.Context, ref string) error

	// NetworkCreate creates a bridge network; an existing network of that name is an error that
	// IsConflict recognises.
	NetworkCreate(ctx context.Context, spec NetworkSpec) (string, error)
	// NetworkInspect describes one network by name or id.
	NetworkInspect(ctx context.Context, name string) (Network, error)
	// NetworkList lists the networks carrying every given label.
	NetworkList(ctx context.Context, labels map[string]string) ([]Network, error)
	// NetworkRemove removes one network.
	NetworkRemove(ctx context.Context, id string) error

	// ContainerCreate creates (not starts) a container attached to its networks.
	ContainerCreate(ctx context.Context, spec ContainerSpec) (string, error)
	// ContainerList lists every container (running or not) carrying every given label.
	ContainerList(ctx context.Context, labels map[string]string) ([]Container, error)
	// ContainerInspect describes one container.
	ContainerInspect(ctx context.Context, id string) (Container, error)
	// ContainerStart starts a created or stopped container.
	ContainerStart(ctx context.Context, id string) error
	// ContainerKill sends a signal (e.g. "SIGKILL").
	ContainerKill(ctx context.Context, id, signal string) error
	// ContainerPause freezes every process of a container (cgroup freezer).
	ContainerPause(ctx context.Context, id string) error
	// ContainerUnpause thaws a paused container.
	ContainerUnpause(ctx context.Context, id string) error
	// ContainerWait waits until the container is not running and returns its exit code.
	ContainerWait(ctx context.Context, id string) (int64, error)
	// ContainerLogs writes the container's stdout and stderr (demultiplexed) to the writers.
	ContainerLogs(ctx context.Context, id string, stdout, stderr io.Writer) error
	// ContainerRemove removes a container, killing it first if it runs.
	ContainerRemove(ctx context.Context, id string) error
	// CopyToContainer extracts a tar archive into dir of a (created or stopped) container,
	// volumes included; entries are owned by root.
	CopyToContainer(ctx context.Context, id, dir string, archive io.Reader) error

	// VolumeCreate creates a named local volume.
	VolumeCreate(ctx context.Context, name string, labels map[string]string) error
	// VolumeList lists the names of the volumes carrying every given label.
	VolumeList(ctx context.Context, labels map[string]string) ([]string, error)
	// VolumeRemove removes a volume.
	VolumeRemove(ctx context.Context, name string) error
	// Close releases the client.
	Close() error
}

// NetworkSpec is a bridge network to create.
type NetworkSpec struct {
	// Name is the network's name.
	Name string
	// Subnet and Gateway are the IPv4 range and the host's address on it.
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Labels identify it as drill's.
	Labels map[string]string
}

// Network is a network as the engine describes it.
type Network struct {
	ID, Name string
	Labels   map[string]string
	// Subnet is the first IPAM subnet (invalid if none).
	Subnet netip.Prefix
}

// Endpoint is a container's attachment to one network.
type Endpoint struct {
	// Network is the network's name.
	Network string
	// IP is the container's static address on it.
	IP netip.Addr
	// Aliases are extra DNS names on the network.
	Aliases []string
}

// PortBinding publishes a container port on the host.
type PortBinding struct {
	// Port is the container port, Proto "tcp" or "udp".
	Port  int
	Proto string
	// HostIP is the host address (drill uses 127.0.0.1 only); HostPort 0 lets the engine choose.
	HostIP   string
	HostPort int
}

// ContainerSpec is a container to create.
type ContainerSpec struct {
	Name     string
	Image    string
	Cmd      []string
	Labels   map[string]string
	Hostname string
	// User is "uid:gid" (empty: the image's default, root).
	User string
	// Init runs the engine's docker-init as PID 1 (signal forwarding, zombie reaping).
	Init bool
	// Binds are host:container[:ro] bind mounts.
	Binds []string
	// Ports are published on the host.
	Ports []PortBinding
	// Networks are the container's networks; the first is the one it is created on (its default
	// route and published ports go through it). Empty with NetworkMode set.
	Networks []Endpoint
	// NetworkMode is e.g. "container:<id>" to share another container's network namespace.
	NetworkMode string
	// CapAdd are capabilities given back after Hardened dropped them all (e.g. NET_ADMIN).
	CapAdd []string
	// Hardened drops every capability, forbids gaining privileges (no-new-privileges), and
	// mounts the root filesystem read-only with a private tmpfs on /tmp: a node writes only to
	// its bind-mounted data directory.
	Hardened bool
}

// What Hardened sets, shared with the compose export.
var (
	hardenedCapDrop     = []string{"ALL"}
	hardenedSecurityOpt = []string{"no-new-privileges"}
)

// hardenedTmpfs is the private /tmp of a hardened container (path, mount options).
const hardenedTmpfs, hardenedTmpfsOpts = "/tmp", "rw,noexec,nosuid,size=64m"

// Container is a container as the engine describes it.
type Container struct {
	ID, Name string
	// Host is the engine the container is on: a region's docker_host, "" for the default engine
	// (set by the runtime, which lists every engine of a topology).
	Host   string
	Labels map[string]string
	// Image is the image the container was created from.
	Image string
	// State is created, running, paused, restarting, removing, exited or dead.
	State string
	// Pid is the main process's pid on the engine's host (0 when not running).
	Pid int
	// ExitCode is the last exit code.
	ExitCode int
	// Hardened: every capability dropped (none added back), no-new-privileges and a read-only
	// root (ContainerInspect only).
	Hardened bool
}

// Running reports a running or paused container.
func (c Container) Running() bool { return c.State == "running" || c.State == "paused" }

// IsNotFound reports an engine "no such object" error.
func IsNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// IsConflict reports an engine "already exists" / "in use" error.
func IsConflict(err error) bool { return cerrdefs.IsConflict(err) }

// apiEngine is Engine over the Docker Engine API client.
type apiEngine struct {
	c *client.Client
}

// NewEngine connects to the engine the environment names (DOCKER_HOST, default the local
// socket), negotiating the API version (engines as old as 20.10, API 1.41, answer).
func NewEngine() (Engine, error) {
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &apiEngine{c: c}, nil
}

// NewEngineAt connects to the engine at host, written as DOCKER_HOST is (a region's docker_host):
// unix:///path, tcp://host:port (with TLS when DOCKER_TLS_VERIFY or DOCKER_CERT_PATH say so, as
// for DOCKER_HOST) or ssh://[user@]host[:port], which runs `docker system dial-stdio` on the host
// over ssh as the docker CLI does.
func NewEngineAt(host string) (Engine, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if strings.HasPrefix(host, "ssh://") {
		dial, err := sshDialer(host)
		if err != nil {
			return nil, err
		}
		// The HTTP host is a placeholder: every connection is the ssh command's stdio.
		opts = append(opts, client.WithHost("http://docker.example"), client.WithDialContext(dial))
	} else {
		if strings.HasPrefix(host, "tcp://") {
			opts = append(opts, client.WithTLSClientConfigFromEnv())
		}
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", host, err)
	}
	return &apiEngine{c: c}, nil
}

func (e *apiEngine) Close() error { return e.c.Close() }

func (e *apiEngine) Ping(ctx context.Context) error {
	if _, err := e.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("docker engine: %w", err)
	}
	return nil
}

func (e *apiEngine) ID(ctx context.Context) (string, error) {
	info, err := e.c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", fmt.Errorf("docker engine info: %w", err)
	}
	return info.Info.ID + " " + info.Info.DockerRootDir, nil
}

func (e *apiEngine) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := e.c.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", ref, err)
}

func (e *apiEngine) ImageRemove(ctx context.Context, ref string) error {
	if _, err := e.c.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

func (e *apiEngine) ImageImport(ctx context.Context, rootfs io.Reader, ref string, changes []string) error {
	rc, err := e.c.ImageImport(ctx, client.ImageImportSource{Source: rootfs, SourceName: "-"}, ref, client.ImageImportOptions{Changes: changes})
	if err != nil {
		return fmt.Errorf("import image %s: %w", ref, err)
	}
	defer rc.Close()
	// The answer is a stream of JSON messages; an error shows up in one of them.
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("import image %s: read answer: %w", ref, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("import image %s: %s", ref, msg.Error)
		}
	}
}

func labelFilter(labels map[string]string) client.Filters {
	f := client.Filters{}
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return f
}

func (e *apiEngine) NetworkCreate(ctx context.Context, s NetworkSpec) (string, error) {
	resp, err := e.c.NetworkCreate(ctx, s.Name, client.NetworkCreateOptions{
		Driver: "bridge",
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: s.Subnet, Gateway: s.Gateway}}},
		Labels: s.Labels,
		// No NAT to the outside: drill's nodes talk to each other and to the host only.
		Options: map[string]string{"com.docker.network.bridge.enable_ip_masquerade": "false"},
	})
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

func toNetwork(n network.Network) Network {
	out := Network{ID: n.ID, Name: n.Name, Labels: n.Labels}
	for _, c := range n.IPAM.Config {
		if c.Subnet.IsValid() {
			out.Subnet = c.Subnet
			break
		}
	}
	return out
}

func (e *apiEngine) NetworkInspect(ctx context.Context, name string) (Network, error) {
	n, err := e.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		return Network{}, err
	}
	return toNetwork(n.Network.Network), nil
}

func (e *apiEngine) NetworkList(ctx context.Context, labels map[string]string) ([]Network, error) {
	ns, err := e.c.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilter(labels)})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]Network, 0, len(ns.Items))
	for _, n := range ns.Items {
		out = append(out, toNetwork(n.Network))
	}
	return out, nil
}

func (e *apiEngine) NetworkRemove(ctx context.Context, id string) error {
	_, err := e.c.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
	return err
}

func (e *apiEngine) ContainerCreate(ctx context.Context, s ContainerSpec) (string, error) {
	cfg := &container.Config{Image: s.Image, Cmd: s.Cmd, Labels: s.Labels, Hostname: s.Hostname, User: s.User,
		ExposedPorts: network.PortSet{}}
	hc := &container.HostConfig{Binds: s.Binds, CapAdd: s.CapAdd, PortBindings: network.PortMap{},
		NetworkMode: container.NetworkMode(s.NetworkMode)}
	if s.Init {
		init := true
		hc.Init = &init
	}
	if s.Hardened {
		hc.CapDrop = hardenedCapDrop
		hc.SecurityOpt = hardenedSecurityOpt
		hc.ReadonlyRootfs = true
		hc.Tmpfs = map[string]string{hardenedTmpfs: hardenedTmpfsOpts}
	}
	for _, p := range s.Ports {
		port, ok := network.PortFrom(uint16(p.Port), network.IPProtocol(p.Proto))
		if !ok {
			return "", fmt.Errorf("container %s: bad port %d/%s", s.Name, p.Port, p.Proto)
		}
		cfg.ExposedPorts[port] = struct{}{}
		hp := ""
		if p.HostPort > 0 {
			hp = fmt.Sprint(p.HostPort)
		}
		b := network.PortBinding{HostPort: hp}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return "", fmt.Errorf("container %s: host address %q: %w", s.Name, p.HostIP, err)
			}
			b.HostIP = ip
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], b)
	}
	var nc *network.NetworkingConfig
	if len(s.Networks) > 0 {
		// API 1.41 attaches one network at create; the others are connected before the start.
		first := s.Networks[0]
		hc.NetworkMode = container.NetworkMode(first.Network)
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{first.Network: endpoint(first)}}
	}
	resp, err := e.c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, NetworkingConfig: nc, Name: s.Name})
	if err != nil {
		return "", err
	}
	for _, ep := range s.Networks[min(1, len(s.Networks)):] {
		if _, err := e.c.NetworkConnect(ctx, ep.Network, client.NetworkConnectOptions{Container: resp.ID, EndpointConfig: endpoint(ep)}); err != nil {
			return resp.ID, fmt.Errorf("connect %s to network %s: %w", s.Name, ep.Network, err)
		}
	}
	return resp.ID, nil
}

func endpoint(ep Endpoint) *network.EndpointSettings {
	return &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ep.IP}, Aliases: ep.Aliases}
}

func (e *apiEngine) ContainerList(ctx context.Context, labels map[string]string) ([]Container, error) {
	cs, err := e.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilter(labels)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(cs.Items))
	for _, c := range cs.Items {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, Container{ID: c.ID, Name: name, Labels: c.Labels, Image: c.Image, State: string(c.State)})
	}
	return out, nil
}

func (e *apiEngine) ContainerInspect(ctx context.Context, id string) (Container, error) {
	r, err := e.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return Container{}, err
	}
	c := r.Container
	out := Container{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/")}
	if c.Config != nil {
		out.Labels, out.Image = c.Config.Labels, c.Config.Image
	}
	if c.State != nil {
		out.State, out.Pid, out.ExitCode = string(c.State.Status), c.State.Pid, c.State.ExitCode
	}
	if hc := c.HostConfig; hc != nil {
		out.Hardened = slices.Contains(hc.CapDrop, "ALL") && len(hc.CapAdd) == 0 &&
			slices.Contains(hc.SecurityOpt, "no-new-privileges") && hc.ReadonlyRootfs
	}
	return out, nil
}

func (e *apiEngine) CopyToContainer(ctx context.Context, id, dir string, archive io.Reader) error {
	if _, err := e.c.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: dir, Content: archive}); err != nil {
		return fmt.Errorf("copy into %s:%s: %w", id, dir, err)
	}
	return nil
}

func (e *apiEngine) VolumeCreate(ctx context.Context, name string, labels map[string]string) error {
	if _, err := e.c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: "local", Labels: labels}); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

func (e *apiEngine) VolumeList(ctx context.Context, labels map[string]string) ([]string, error) {
	vs, err := e.c.VolumeList(ctx, client.VolumeListOptions{Filters: labelFilter(labels)})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []string
	for _, v := range vs.Items {
		out = append(out, v.Name)
	}
	return out, nil
}

func (e *apiEngine) VolumeRemove(ctx context.Context, name string) error {
	_, err := e.c.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	return err
}

func (e *apiEngine) ContainerStart(ctx context.Context, id string) error {
	_, err := e.c.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return err
}

func (e *apiEngine) ContainerKill(ctx context.Context, id, signal string) error {
	_, err := e.c.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signal})
	return err
}

func (e *apiEngine) ContainerPause(ctx context.Context, id string) error {
	_, err := e.c.ContainerPause(ctx, id, client.ContainerPauseOptions{})
	return err
}

func (e *apiEngine) ContainerUnpause(ctx context.Context, id string) error {
	_, err := e.c.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
	return err
}

func (e *apiEngine) ContainerWait(ctx context.Context, id string) (int64, error) {
	w := e.c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-w.Result:
		if r.Error != nil && r.Error.Message != "" {
			return r.StatusCode, errors.New(r.Error.Message)
		}
		return r.StatusCode, nil
	case err := <-w.Error:
		return -1, err
	}
}

func (e *apiEngine) ContainerLogs(ctx context.Context, id string, stdout, stderr io.Writer) error {
	rc, err := e.c.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err
	}
	defer rc.Close()
	// Without a TTY the stream is multiplexed with 8-byte headers.
	_, err = stdcopy.StdCopy(stdout, stderr, rc)
	return err
}

func (e *apiEngine) ContainerRemove(ctx context.Context, id string) error {
	_, err := e.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	return err
}
