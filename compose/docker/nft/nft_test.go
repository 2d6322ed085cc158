package nft

import (
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// newNetNS makes a fresh network namespace and returns an option that targets it. The thread
// that created it is locked and never unlocked, so the runtime throws it away; the caller's
// namespace is untouched.
func newNetNS(t *testing.T) nftables.ConnOption {
	t.Helper()
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Skipf("SKIP (loud): cannot create a network namespace (needs root or CAP_SYS_ADMIN): %v", r.err)
	}
	t.Cleanup(func() { _ = unix.Close(r.fd) })
	return nftables.WithNetNSFd(r.fd)
}

func TestApplyListDeleteInOwnNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP (loud): nftables needs root; run the tests as root to cover this package")
	}
	ns := newNetNS(t)
	spec := Spec{
		Table:       TablePrefix + "test_a",
		Drop:        []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")},
		Keep:        []netip.Prefix{netip.MustParsePrefix("10.1.1.0/24")},
		Manage:      []netip.Prefix{netip.MustParsePrefix("10.1.255.254/32")},
		ManagePorts: []uint16{7000, 7001},
	}
	if err := Apply(spec, ns); err != nil {
		t.Fatal(err)
	}
	// Applying again replaces the table (idempotent), with loss this time.
	spec.LossPercent = 30
	if err := Apply(spec, ns); err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	b := Spec{Table: TablePrefix + "test_b", Drop: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}}
	if err := Apply(b, ns); err != nil {
		t.Fatal(err)
	}
	names, err := List(TablePrefix, ns)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{TablePrefix + "test_a", TablePrefix + "test_b"}) {
		t.Fatalf("tables %v", names)
	}
	c, err := nftables.New(ns)
	if err != nil {
		t.Fatal(err)
	}
	tbl := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: spec.Table}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chains {
		if ch.Table.Name != spec.Table {
			continue
		}
		rules, err := c.GetRules(tbl, ch)
		if err != nil {
			t.Fatal(err)
		}
		// lo, one keep, two management ports, one drop.
		if len(rules) != 5 {
			t.Errorf("chain %s has %d rules, want 5", ch.Name, len(rules))
		}
	}
	if err := Delete(spec.Table, ns); err != nil {
		t.Fatal(err)
	}
	if err := Delete(spec.Table, ns); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	gone, err := Flush(TablePrefix, ns)
	if err != nil || !slices.Equal(gone, []string{b.Table}) {
		t.Fatalf("flush: %v %v", gone, err)
	}
	if names, _ := List(TablePrefix, ns); len(names) != 0 {
		t.Fatalf("left: %v", names)
	}
}

func TestSpecValidate(t *testing.T) {
	for _, s := range []Spec{
		{Table: "other"},
		{Table: TablePrefix + "x", LossPercent: 100},
		{Table: TablePrefix + "x", Drop: []netip.Prefix{netip.MustParsePrefix("::/0")}},
	} {
		if s.Validate() == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}
