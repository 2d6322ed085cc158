// Package nft installs drill's packet-drop rules in a Linux network namespace with nftables, in
// pure Go (google/nftables, no nft binary): one IPv4 table per fault, named with TablePrefix, with
// an input and an output chain. Packets are dropped silently (no reject), so a TCP connect times
// out rather than being refused, and UDP (gossip) vanishes. The rules match every packet, not only
// new flows, so established connections are cut at once without flushing conntrack; deleting the
// table heals at once.
package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TablePrefix starts the name of every table drill creates; nothing else is ever touched.
const TablePrefix = "drill_"

// Spec is one rule set (one table) for one network namespace. Matching order: loopback and Keep
// are accepted, then management traffic, then Drop is dropped; everything else passes.
type Spec struct {
	// Table names the table; it must start with TablePrefix.
	Table string `json:"table"`
	// Drop are the addresses whose packets are dropped, both directions (0.0.0.0/0 = every packet).
	Drop []netip.Prefix `json:"drop"`
	// DropIn are addresses whose packets are dropped when they arrive; DropOut those dropped when
	// sent to them (one-way faults).
	DropIn  []netip.Prefix `json:"drop_in,omitempty"`
	DropOut []netip.Prefix `json:"drop_out,omitempty"`
	// Keep are addresses never dropped (the node's own site).
	Keep []netip.Prefix `json:"keep,omitempty"`
	// Manage are the hosts (drill's host) whose TCP to ManagePorts is never dropped, so drill can
	// still observe and heal a node it black-holed.
	Manage []netip.Prefix `json:"manage,omitempty"`
	// ManagePorts are the node's TCP ports Manage may reach.
	ManagePorts []uint16 `json:"manage_ports,omitempty"`
	// LossPercent, from 1 to 99, drops that share of the matching packets at random (nftables
	// numgen) instead of all of them; 0 drops all.
	LossPercent int `json:"loss_percent,omitempty"`
}

// Validate checks the spec before anything is changed.
func (s Spec) Validate() error {
	if err := checkTable(s.Table); err != nil {
		return err
	}
	if s.LossPercent < 0 || s.LossPercent > 99 {
		return fmt.Errorf("nft: loss_percent %d out of 0..99", s.LossPercent)
	}
	for _, p := range slices.Concat(s.Drop, s.DropIn, s.DropOut, s.Keep, s.Manage) {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("nft: %v is not an IPv4 prefix", p)
		}
	}
	return nil
}

func checkTable(name string) error {
	if !strings.HasPrefix(name, TablePrefix) || len(name) > 200 {
		return fmt.Errorf("nft: table %q must start with %q (at most 200 characters)", name, TablePrefix)
	}
	return nil
}

// Apply installs (or atomically replaces) the spec's table in the namespace the options select
// (default: the caller's own).
func Apply(s Spec, opts ...nftables.ConnOption) error {
	if err := s.Validate(); err != nil {
		return err
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("nft: open netlink: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.Table}
	// Add then delete then add again, in one transaction: a replace that works whether or not
	// the table exists, and is never seen half done.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	policy := nftables.ChainPolicyAccept
	in := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	out := c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	for _, dir := range []struct {
		chain            *nftables.Chain
		ifKey            expr.MetaKey
		addrOff, portOff uint32 // our side's port: the destination port in, the source port out
		drop             []netip.Prefix
	}{
		{in, expr.MetaKeyIIFNAME, 12, 2, slices.Concat(s.Drop, s.DropIn)},
		{out, expr.MetaKeyOIFNAME, 16, 0, slices.Concat(s.Drop, s.DropOut)},
	} {
		add := func(e ...expr.Any) { c.AddRule(&nftables.Rule{Table: t, Chain: dir.chain, Exprs: e}) }
		accept := &expr.Verdict{Kind: expr.VerdictAccept}
		add(&expr.Meta{Key: dir.ifKey, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")}, accept)
		for _, p := range s.Keep {
			add(append(matchAddr(dir.addrOff, p), accept)...)
		}
		for _, p := range s.Manage {
			for _, port := range s.ManagePorts {
				e := matchAddr(dir.addrOff, p)
				e = append(e,
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 9, Len: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
					&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: dir.portOff, Len: 2},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
					accept)
				add(e...)
			}
		}
		for _, p := range dir.drop {
			e := matchAddr(dir.addrOff, p)
			if s.LossPercent > 0 {
				// numgen yields host order; compare big-endian bytes, as nft does.
				e = append(e,
					&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
					&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
					&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binary.BigEndian.AppendUint32(nil, uint32(s.LossPercent))})
			}
			add(append(e, &expr.Verdict{Kind: expr.VerdictDrop})...)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: install table %s: %w", s.Table, err)
	}
	return nil
}

// matchAddr matches the IPv4 address at offset (12 source, 16 destination) against p; /0 matches
// every packet and needs no expression.
func matchAddr(offset uint32, p netip.Prefix) []expr.Any {
	if p.Bits() == 0 {
		return nil
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if p.Bits() < 32 {
		mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-p.Bits()))
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
	}
	a := p.Masked().Addr().As4()
	return append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]})
}

// ifname is an interface name as the kernel compares it (NUL-padded to IFNAMSIZ).
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// Delete removes one table; a table that is not there is fine.
func Delete(table string, opts ...nftables.ConnOption) error {
	if err := checkTable(table); err != nil {
		return err
	}
	names, err := List(table, opts...)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == table {
			return deleteTables([]string{table}, opts...)
		}
	}
	return nil
}

// Flush removes every table whose name starts with prefix (itself starting with TablePrefix) and
// returns their names.
func Flush(prefix string, opts ...nftables.ConnOption) ([]string, error) {
	if !strings.HasPrefix(prefix, TablePrefix) {
		return nil, fmt.Errorf("nft: prefix %q must start with %q", prefix, TablePrefix)
	}
	names, err := List(prefix, opts...)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	return names, deleteTables(names, opts...)
}

func deleteTables(names []string, opts ...nftables.ConnOption) error {
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("nft: open netlink: %w", err)
	}
	for _, n := range names {
		c.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: n})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: delete tables %v: %w", names, err)
	}
	return nil
}

// List returns the IPv4 tables whose names start with prefix (itself starting with TablePrefix).
func List(prefix string, opts ...nftables.ConnOption) ([]string, error) {
	if !strings.HasPrefix(prefix, TablePrefix) {
		return nil, fmt.Errorf("nft: prefix %q must start with %q", prefix, TablePrefix)
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nft: open netlink: %w", err)
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("nft: list tables: %w", err)
	}
	var out []string
	for _, t := range ts {
		if strings.HasPrefix(t.Name, prefix) {
			out = append(out, t.Name)
		}
	}
	return out, nil
}
