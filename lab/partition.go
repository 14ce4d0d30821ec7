package lab

// Partitions: an nftables table of family bridge in the root namespace
// whose forward chain drops frames between the bridge ports of nodes in
// different groups. Filtering on the bridge, not in the nodes, is what
// makes a partition hold against XDP receivers: XDP sees a frame before
// any netfilter hook of the namespace it arrives in.

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

const partitionSyntax = "groups of nodes separated by /, nodes by commas, e.g. n1,n2/n3"

// ParsePartition parses a partition spec such as "n1,n2/n3" into groups
// ([[n1 n2] [n3]]) of the given nodes. The spec must name at least two
// groups, each with at least one node, and no node twice. Nodes the spec
// leaves out are not added here: Partition puts each in a group of its own.
func ParsePartition(spec string, nodes []string) ([][]string, error) {
	known := map[string]bool{}
	for _, n := range nodes {
		known[n] = true
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("empty partition; give %s", partitionSyntax)
	}
	seen := map[string]int{}
	var groups [][]string
	for gi, g := range strings.Split(spec, "/") {
		var group []string
		for _, n := range strings.Split(g, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				if strings.TrimSpace(g) == "" {
					return nil, fmt.Errorf("partition %q: group %d is empty; give %s", spec, gi+1, partitionSyntax)
				}
				return nil, fmt.Errorf("partition %q: empty node name in group %d (%q); give %s", spec, gi+1, strings.TrimSpace(g), partitionSyntax)
			}
			if !known[n] {
				return nil, fmt.Errorf("partition %q: unknown node %q; the lab's nodes are %s", spec, n, strings.Join(nodes, " "))
			}
			if prev, dup := seen[n]; dup {
				if prev == gi {
					return nil, fmt.Errorf("partition %q: node %s appears twice in group %d; name each node once", spec, n, gi+1)
				}
				return nil, fmt.Errorf("partition %q: node %s is in groups %d and %d; a node is in one group only", spec, n, prev+1, gi+1)
			}
			seen[n] = gi
			group = append(group, n)
		}
		groups = append(groups, group)
	}
	if len(groups) < 2 {
		return nil, fmt.Errorf("partition %q has one group; a partition needs two or more: %s", spec, partitionSyntax)
	}
	return groups, nil
}

// Partition cuts the lab into groups: frames pass between nodes of the
// same group and are dropped between nodes of different groups, on both
// rings and the service network. Nodes in no group form a group each. The
// client stays connected to every node. It replaces any earlier partition
// in one nftables transaction.
func (l *Lab) Partition(groups [][]string) error {
	nodes := l.Nodes()
	var specs []string
	for _, g := range groups {
		specs = append(specs, strings.Join(g, ","))
	}
	if _, err := ParsePartition(strings.Join(specs, "/"), nodes); err != nil {
		return err
	}
	full := fullPartition(groups, nodes)
	if err := applyNft(partitionRuleset(full)); err != nil {
		return err
	}
	return l.update(func() error {
		l.st.Partition = full
		return nil
	})
}

// fullPartition copies groups and adds a group for each node in none.
func fullPartition(groups [][]string, nodes []string) [][]string {
	in := map[string]bool{}
	var out [][]string
	for _, g := range groups {
		out = append(out, append([]string(nil), g...))
		for _, n := range g {
			in[n] = true
		}
	}
	for _, n := range nodes {
		if !in[n] {
			out = append(out, []string{n})
		}
	}
	return out
}

// partitionRuleset is the nft script for a partition: it creates the table
// if missing, then deletes and remakes it, all as one transaction.
func partitionRuleset(groups [][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table bridge %s {}\ndelete table bridge %s\n", PartitionTable, PartitionTable)
	fmt.Fprintf(&b, "table bridge %s {\n", PartitionTable)
	fmt.Fprintf(&b, "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n")
	ports := make([]string, len(groups))
	for gi, g := range groups {
		var ps []string
		for _, n := range g {
			i, _ := strconv.Atoi(strings.TrimPrefix(n, "n"))
			for link := range numLinks {
				ps = append(ps, strconv.Quote(hostIface(i, link)))
			}
		}
		ports[gi] = "{ " + strings.Join(ps, ", ") + " }"
	}
	for a := range groups {
		for c := range groups {
			if a != c {
				fmt.Fprintf(&b, "\t\tiifname %s oifname %s counter drop comment %s\n", ports[a], ports[c],
					strconv.Quote(fmt.Sprintf("%s -x- %s", strings.Join(groups[a], ","), strings.Join(groups[c], ","))))
			}
		}
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

func applyNft(script string) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("partitions need nftables' nft command (apt-get install nftables)")
	}
	cmd := exec.CommandContext(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Heal removes the partition (the nftables table); healing a lab that is
// not partitioned does nothing.
func (l *Lab) Heal() error {
	if err := deletePartitionTable(); err != nil {
		return err
	}
	return l.update(func() error {
		l.st.Partition = nil
		return nil
	})
}

func deletePartitionTable() error {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil // no nft, no table
	}
	return applyNft(fmt.Sprintf("table bridge %s {}\ndelete table bridge %s\n", PartitionTable, PartitionTable))
}
