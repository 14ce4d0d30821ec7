package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/controller"
)

// Resource agents written for Pacemaker call a few of its tools: Stateful
// and every promotable agent set their promotion score with crm_attribute
// --promotion, and ocf-shellfuncs asks crm_node -n for the node's name.
// The daemon runs agents with HA_SBIN_DIR and PATH pointing at links to
// this binary under those names (controller.newExecutor), and with
// TACHY_SOCKET and TACHY_NODE naming its control socket and node; these
// shims answer them from the CIB. Only what agents use is implemented.

// shim runs the tool named by argv[0], if it is one; ok is false otherwise.
func shim(args []string) (code int, ok bool) {
	switch filepath.Base(args[0]) {
	case "crm_attribute":
		return crmAttribute(args[1:]), true
	case "crm_node":
		return crmNode(args[1:]), true
	}
	return 0, false
}

func crmNode(args []string) int {
	for _, a := range args {
		if a == "-n" || a == "--name" {
			node := os.Getenv("TACHY_NODE")
			if node == "" {
				fmt.Fprintln(os.Stderr, "crm_node: TACHY_NODE is not set: run under the tachy daemon")
				return 1
			}
			fmt.Println(node)
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "crm_node (tachy): only -n/--name is supported")
	return 1
}

// crmAttribute implements crm_attribute for node attributes: --promotion
// (the promotion score of the agent's resource), -n NAME, -N NODE, -v
// VALUE (update), -D (delete), -G (query), -q (value only), -l lifetime.
func crmAttribute(args []string) int {
	var name, node, value string
	var promotion, del, query, quiet, haveValue bool
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
				return v
			}
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		key, _, _ := strings.Cut(a, "=")
		switch key {
		case "-p", "--promotion":
			promotion = true
		case "-n", "--name":
			name = next()
		case "-N", "--node":
			node = next()
		case "-v", "--update":
			value, haveValue = next(), true
		case "-D", "--delete":
			del = true
		case "-G", "--query":
			query = true
		case "-q", "--quiet":
			quiet = true
		case "-l", "--lifetime", "-t", "--type":
			next() // reboot (status) is the only lifetime kept
		case "-i", "--id", "-s", "--set-name", "-d", "--default":
			next()
		default:
			fmt.Fprintf(os.Stderr, "crm_attribute (tachy): option %s is not supported\n", a)
			return 1
		}
	}
	if node == "" {
		node = os.Getenv("TACHY_NODE")
	}
	if promotion {
		rsc := os.Getenv("OCF_RESOURCE_INSTANCE")
		if rsc == "" {
			fmt.Fprintln(os.Stderr, "crm_attribute --promotion: OCF_RESOURCE_INSTANCE is not set")
			return 1
		}
		base, _, _ := strings.Cut(rsc, ":") // the score belongs to the clone, not the instance
		name = "master-" + base
	}
	if name == "" || node == "" {
		fmt.Fprintln(os.Stderr, "crm_attribute: give -n NAME (or --promotion) and -N NODE (or run under the tachy daemon)")
		return 1
	}
	cl := controller.Client{Socket: os.Getenv("TACHY_SOCKET")}
	if cl.Socket == "" {
		cl.Socket = "/run/tachy/tachy.sock"
	}
	switch {
	case query:
		doc, err := cl.CIB()
		if err != nil {
			fmt.Fprintln(os.Stderr, "crm_attribute:", err)
			return 1
		}
		c, err := cib.Import(strings.NewReader(doc.XML))
		if err != nil {
			fmt.Fprintln(os.Stderr, "crm_attribute:", err)
			return 1
		}
		v, found := transientAttr(c, node, name)
		if !found {
			fmt.Fprintf(os.Stderr, "crm_attribute: no attribute %s on node %s\n", name, node)
			return 105 // Pacemaker's "no such object"
		}
		if quiet {
			fmt.Println(v)
		} else {
			fmt.Printf("scope=status  name=%s value=%s\n", name, v)
		}
		return 0
	case del || haveValue:
		ch := &cib.Change{Op: cib.OpSetNodeAttribute, Node: node, Name: name}
		if !del {
			ch.Value = &value
		}
		if _, err := cl.Change(ch); err != nil {
			fmt.Fprintln(os.Stderr, "crm_attribute:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "crm_attribute: give -v VALUE, -D or -G")
	return 1
}

func transientAttr(c *cib.CIB, node, name string) (string, bool) {
	for _, st := range c.Status.NodeStates {
		if st.Uname != node {
			continue
		}
		for _, set := range st.Transient {
			for _, p := range set.Pairs {
				if p.Name == name && p.HasValue {
					return p.Value, true
				}
			}
		}
	}
	return "", false
}
