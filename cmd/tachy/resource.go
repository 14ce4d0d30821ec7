package main

// tachy resource, constraint and node: pcs's commands, each a
// read-edit-check-write of the whole configuration (resource_edit.go does
// the edits), submitted as one conditional change so that nothing partial
// is ever written and no concurrent change is lost.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/controller"
	"github.com/tachy-ha/tachy/lrmd"
)

// readCIB reads the cluster's CIB and parses it.
func readCIB(g *globals) (*cib.CIB, error) {
	doc, err := controller.Client{Socket: g.Socket}.CIB()
	if err != nil {
		return nil, err
	}
	c, err := cib.Import(strings.NewReader(doc.XML))
	if err != nil {
		return nil, fmt.Errorf("the cluster's CIB does not parse: %w", err)
	}
	return c, nil
}

// editConfig reads the CIB, lets edit change the configuration, checks
// the result and submits it as one replace-configuration conditional on
// the epoch read; when another change came in between, it starts over. An
// edit that returns "" changes nothing and nothing is submitted;
// otherwise its message is printed once the change is committed.
func editConfig(g *globals, edit func(c *cib.CIB) (string, error)) error {
	cl := controller.Client{Socket: g.Socket}
	const attempts = 8
	for try := 1; ; try++ {
		c, err := readCIB(g)
		if err != nil {
			return err
		}
		epoch := c.Epoch
		msg, err := edit(c)
		if err != nil {
			return err
		}
		if msg == "" {
			return nil
		}
		xml, err := checkConfig(c)
		if err != nil {
			return err
		}
		_, err = cl.Change(&cib.Change{Op: cib.OpReplaceConfiguration, XML: xml, ExpectEpoch: &epoch})
		if err != nil && (strings.Contains(err.Error(), "changed meanwhile") || notSent(err)) && try < attempts {
			time.Sleep(time.Duration(try) * 10 * time.Millisecond)
			continue
		}
		if err != nil {
			return fmt.Errorf("%w; nothing was changed", err)
		}
		fmt.Println(msg)
		return nil
	}
}

// notSent reports an error from a daemon that could not reach the DC (it
// never sent the change): the change can be tried again.
func notSent(err error) bool {
	return strings.Contains(err.Error(), "reaching the DC at ")
}

// submitRetrying submits a change that may be repeated (cleanup's status
// changes), trying again a few times when the DC could not be reached.
func submitRetrying(cl controller.Client, ch *cib.Change) error {
	for try := 1; ; try++ {
		_, err := cl.Change(ch)
		if err == nil || !notSent(err) || try == 5 {
			return err
		}
		time.Sleep(time.Duration(try) * 50 * time.Millisecond)
	}
}

type resourceCmd struct {
	Create  resourceCreateCmd  `cmd:"" help:"Create a resource: NAME AGENT [KEY=VALUE ...] [op NAME KEY=VALUE ...]... [meta KEY=VALUE ...]."`
	Delete  resourceDeleteCmd  `cmd:"" help:"Delete a resource and the constraints that name it."`
	Enable  resourceEnableCmd  `cmd:"" help:"Let a resource run (removes its target-role)."`
	Disable resourceDisableCmd `cmd:"" help:"Stop a resource (target-role=Stopped)."`
	Move    resourceMoveCmd    `cmd:"" help:"Move a resource to a node (location cli-prefer-NAME INFINITY; 'clear' removes it)."`
	Ban     resourceBanCmd     `cmd:"" help:"Keep a resource off a node (location cli-ban-NAME-on-NODE -INFINITY; 'clear' removes it)."`
	Clear   resourceClearCmd   `cmd:"" help:"Remove the constraints move and ban made for a resource."`
	Cleanup resourceCleanupCmd `cmd:"" help:"Forget a resource's operation history and failures, so the cluster probes it again."`
	Restart resourceRestartCmd `cmd:"" help:"Stop a resource everywhere, then start it again."`
	List    resourceListCmd    `cmd:"" help:"List the resources and where they run."`
}

type resourceCreateCmd struct {
	Args       []string `arg:"" help:"NAME AGENT [KEY=VALUE ...] [op NAME KEY=VALUE ...]... [meta KEY=VALUE ...]; AGENT is class:provider:type or class:type, e.g. ocf:heartbeat:Dummy, or a built-in agent's name (vip)." placeholder:"NAME AGENT ..."`
	Group      string   `help:"Put the resource in this group (created if need be), at its end." placeholder:"GROUP"`
	Before     string   `help:"With --group: put it before this member." placeholder:"RSC"`
	After      string   `help:"With --group: put it after this member." placeholder:"RSC"`
	Clone      bool     `help:"Clone it (NAME-clone)."`
	Promotable bool     `help:"Make it a promotable clone (NAME-clone with promotable=true)."`
	Disabled   bool     `help:"Create it stopped (target-role=Stopped)."`
	Force      bool     `help:"Create it even if its parameters do not match the agent's meta-data."`
}

func (c *resourceCreateCmd) Run(g *globals) error {
	spec, err := parseCreateArgs(c.Args)
	if err != nil {
		return err
	}
	agent, md, err := agentMetadata(spec.Agent)
	if err != nil {
		return err
	}
	opts := createOptions{Group: c.Group, Before: c.Before, After: c.After, Clone: c.Clone, Promotable: c.Promotable, Disabled: c.Disabled, Force: c.Force}
	_, warnings, err := buildPrimitive(spec, agent, md, opts)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		// a fresh primitive for every attempt: createResource edits it
		p, _, err := buildPrimitive(spec, agent, md, opts)
		if err != nil {
			return "", err
		}
		return createResource(cb, p, opts)
	})
}

// agentMetadata parses AGENT and fetches its meta-data on this node.
func agentMetadata(spec string) (lrmd.Agent, *lrmd.Metadata, error) {
	builtins := lrmd.TachyBuiltins(nil, "")
	if _, ok := builtins.Lookup(spec); ok && !strings.Contains(spec, ":") {
		spec = lrmd.ClassTachy + ":" + spec // a built-in agent by its bare name: vip
	}
	a, err := lrmd.ParseAgent(spec)
	if err != nil {
		return a, nil, fmt.Errorf("%w, e.g. ocf:heartbeat:Dummy, ocf:pacemaker:Stateful or lsb:NAME", err)
	}
	if a.Class == "stonith" {
		return a, nil, fmt.Errorf("%s is a fence agent: create fence devices with `tachy stonith create NAME AGENT ...`", spec)
	}
	tmp, err := os.MkdirTemp("", "tachy-meta-")
	if err != nil {
		return a, nil, err
	}
	defer os.RemoveAll(tmp)
	e := lrmd.New(lrmd.Config{RscTmp: tmp, Builtins: builtins})
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	md, err := e.Metadata(ctx, a)
	switch {
	case lrmd.IsNotInstalled(err):
		return a, nil, fmt.Errorf("agent %s is not installed on this node: %v; check the name (`ls /usr/lib/ocf/resource.d/*/` lists the ocf agents, /etc/init.d the lsb ones) or install its package on every node", a, err)
	case err != nil:
		return a, nil, fmt.Errorf("agent %s: cannot read its meta-data: %w", a, err)
	}
	return a, md, nil
}

type resourceDeleteCmd struct {
	Name    string        `arg:"" help:"Resource, group or clone id."`
	Timeout time.Duration `help:"How long to wait for it to stop before it is deleted." default:"60s"`
	Force   bool          `help:"Delete it without stopping it first."`
}

// Run stops the resource first (target-role=Stopped, then waits until the
// history shows it stopped everywhere), as pcs resource delete does, and
// only then deletes it with its constraints.
func (c *resourceDeleteCmd) Run(g *globals) error {
	cb, err := readCIB(g)
	if err != nil {
		return err
	}
	e, err := findResource(cb, c.Name)
	if err != nil {
		return err
	}
	if !c.Force && len(activeNodes(cb, c.Name)) > 0 {
		if !strings.EqualFold(metaValue(e.r, "target-role"), "Stopped") {
			err := editConfig(g, func(cb *cib.CIB) (string, error) {
				if err := disableResource(cb, c.Name); err != nil {
					return "", err
				}
				return "stopping " + c.Name, nil
			})
			if err != nil {
				return err
			}
		}
		on, err := waitActive(g, c.Name, c.Timeout, func(on []string) bool { return len(on) == 0 })
		if err != nil {
			return err
		}
		if len(on) > 0 {
			return fmt.Errorf("%s did not stop within %s (still active on %s): it is left disabled and not deleted; look at `tachy resource list` and the daemon logs, then delete it again (--force deletes it without stopping it)", c.Name, c.Timeout, strings.Join(on, ", "))
		}
	}
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		removed, cons, err := deleteResource(cb, c.Name)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, id := range cons {
			fmt.Fprintf(&b, "Removing Constraint - %s\n", id)
		}
		fmt.Fprintf(&b, "Deleting Resource - %s", strings.Join(removed, ", "))
		return b.String(), nil
	})
}

type resourceEnableCmd struct {
	Name string `arg:"" help:"Resource id."`
}

func (c *resourceEnableCmd) Run(g *globals) error {
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		if err := enableResource(cb, c.Name); err != nil {
			return "", err
		}
		return "enabled " + c.Name, nil
	})
}

type resourceDisableCmd struct {
	Name string `arg:"" help:"Resource id."`
}

func (c *resourceDisableCmd) Run(g *globals) error {
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		if err := disableResource(cb, c.Name); err != nil {
			return "", err
		}
		return "disabled " + c.Name, nil
	})
}

type resourceMoveCmd struct {
	Name string `arg:"" help:"Resource id."`
	Node string `arg:"" help:"Node to move it to."`
}

func (c *resourceMoveCmd) Run(g *globals) error {
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		id, err := moveResource(cb, c.Name, c.Node)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Location constraint %s: %s prefers %s (INFINITY); `tachy resource clear %s` removes it", id, c.Name, c.Node, c.Name), nil
	})
}

type resourceBanCmd struct {
	Name string `arg:"" help:"Resource id."`
	Node string `arg:"" help:"Node to keep it off."`
}

func (c *resourceBanCmd) Run(g *globals) error {
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		id, err := banResource(cb, c.Name, c.Node)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Location constraint %s: %s avoids %s (-INFINITY); `tachy resource clear %s` removes it", id, c.Name, c.Node, c.Name), nil
	})
}

type resourceClearCmd struct {
	Name string `arg:"" help:"Resource id."`
	Node string `help:"Only the constraints naming this node." placeholder:"NODE"`
}

func (c *resourceClearCmd) Run(g *globals) error {
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		gone, err := clearResource(cb, c.Name, c.Node)
		if err != nil || len(gone) == 0 {
			if err == nil {
				fmt.Printf("%s has no move or ban constraints\n", c.Name)
			}
			return "", err
		}
		return "Removed " + strings.Join(gone, ", "), nil
	})
}

type resourceCleanupCmd struct {
	Name string `arg:"" help:"Resource id."`
	Node string `help:"Only on this node." placeholder:"NODE"`
}

func (c *resourceCleanupCmd) Run(g *globals) error {
	cb, err := readCIB(g)
	if err != nil {
		return err
	}
	prims := map[string]bool{c.Name: true}
	if e, err := findResource(cb, c.Name); err == nil {
		for _, p := range primitivesUnder(e.r) {
			prims[p.ID] = true
		}
	} else if !inHistory(cb, c.Name) {
		return err
	}
	if c.Node != "" {
		if _, err := findNode(cb, c.Node); err != nil {
			return err
		}
	}
	var chs []*cib.Change
	var nodes []string
	for _, st := range cb.Status.NodeStates {
		if c.Node != "" && st.Uname != c.Node {
			continue
		}
		n := len(chs)
		if st.LRM != nil {
			for _, lr := range st.LRM.Resources {
				if base, _, _ := strings.Cut(lr.ID, ":"); prims[base] {
					chs = append(chs, &cib.Change{Op: cib.OpDeleteHistory, Node: st.Uname, Resource: lr.ID})
				}
			}
		}
		for _, set := range st.Transient {
			for _, p := range set.Pairs {
				for _, prefix := range []string{"fail-count-", "last-failure-"} {
					rest, ok := strings.CutPrefix(p.Name, prefix)
					if !ok {
						continue
					}
					rsc, _, _ := strings.Cut(rest, "#")
					if base, _, _ := strings.Cut(rsc, ":"); prims[base] {
						chs = append(chs, &cib.Change{Op: cib.OpSetNodeAttribute, Node: st.Uname, Name: p.Name})
					}
				}
			}
		}
		if len(chs) > n {
			nodes = append(nodes, st.Uname)
		}
	}
	cl := controller.Client{Socket: g.Socket}
	for _, ch := range chs {
		if err := submitRetrying(cl, ch); err != nil {
			return fmt.Errorf("cleanup of %s on %s: %w", c.Name, ch.Node, err)
		}
	}
	if len(nodes) == 0 {
		fmt.Printf("%s has no history or failures to clean up\n", c.Name)
		return nil
	}
	fmt.Printf("Cleaned up %s on %s\n", c.Name, strings.Join(nodes, ", "))
	return nil
}

func inHistory(c *cib.CIB, rsc string) bool {
	for _, st := range c.Status.NodeStates {
		if st.LRM != nil {
			for _, lr := range st.LRM.Resources {
				if base, _, _ := strings.Cut(lr.ID, ":"); base == rsc {
					return true
				}
			}
		}
	}
	return false
}

type resourceRestartCmd struct {
	Name    string        `arg:"" help:"Resource id."`
	Timeout time.Duration `help:"How long to wait for it to stop." default:"60s"`
}

func (c *resourceRestartCmd) Run(g *globals) error {
	err := editConfig(g, func(cb *cib.CIB) (string, error) {
		e, err := findResource(cb, c.Name)
		if err != nil {
			return "", err
		}
		if strings.EqualFold(metaValue(e.r, "target-role"), "Stopped") {
			return "", fmt.Errorf("%s is disabled: `tachy resource enable %s` starts it", c.Name, c.Name)
		}
		if err := disableResource(cb, c.Name); err != nil {
			return "", err
		}
		return "stopping " + c.Name, nil
	})
	if err != nil {
		return err
	}
	on, err := waitActive(g, c.Name, c.Timeout, func(on []string) bool { return len(on) == 0 })
	if err != nil || len(on) > 0 {
		// enable it again either way: a restart must not leave it off
		fmt.Fprintf(os.Stderr, "warning: %s did not stop everywhere within %s (still on %v); enabling it again\n", c.Name, c.Timeout, on)
	}
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		if err := enableResource(cb, c.Name); err != nil {
			return "", err
		}
		return "restarted " + c.Name, nil
	})
}

// waitActive polls the CIB until done(where rsc is active) or the timeout,
// and returns where it is active.
func waitActive(g *globals, rsc string, timeout time.Duration, done func([]string) bool) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := readCIB(g)
		if err != nil {
			return nil, err
		}
		on := activeNodes(c, rsc)
		if done(on) || time.Now().After(deadline) {
			return on, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type resourceListCmd struct {
	JSON bool `help:"Print JSON."`
}

// resourceInfo is one resource as resource list --json prints it.
type resourceInfo struct {
	ID         string   `json:"id"`
	Kind       string   `json:"kind"` // primitive, group, clone, promotable-clone, bundle
	Agent      string   `json:"agent,omitempty"`
	Parent     string   `json:"parent,omitempty"`
	Members    []string `json:"members,omitempty"`
	TargetRole string   `json:"target_role,omitempty"`
	ActiveOn   []string `json:"active_on"`
}

func resourceInfos(c *cib.CIB) []resourceInfo {
	out := []resourceInfo{}
	for _, e := range resourceEntries(c) {
		ri := resourceInfo{ID: e.r.ResourceID(), TargetRole: metaValue(e.r, "target-role"), ActiveOn: activeNodes(c, e.r.ResourceID())}
		if ri.ActiveOn == nil {
			ri.ActiveOn = []string{}
		}
		if e.parent != nil {
			ri.Parent = e.parent.ResourceID()
		}
		switch r := e.r.(type) {
		case *cib.Primitive:
			ri.Kind = "primitive"
			ri.Agent = r.Class + ":" + typeOf(r)
		case *cib.Group:
			ri.Kind = "group"
			for _, m := range r.Children {
				ri.Members = append(ri.Members, m.ID)
			}
		case *cib.Clone:
			ri.Kind = "clone"
			if r.Promotable {
				ri.Kind = "promotable-clone"
			}
			if r.Child != nil {
				ri.Members = []string{r.Child.ResourceID()}
			}
		case *cib.Bundle:
			ri.Kind = "bundle"
		default:
			ri.Kind = fmt.Sprintf("%T", r)
		}
		out = append(out, ri)
	}
	return out
}

func (c *resourceListCmd) Run(g *globals) error {
	cb, err := readCIB(g)
	if err != nil {
		return err
	}
	infos := resourceInfos(cb)
	if c.JSON {
		return printJSON(infos)
	}
	if len(infos) == 0 {
		fmt.Println("NO resources configured")
		return nil
	}
	depth := map[string]int{}
	for _, ri := range infos {
		if ri.Parent != "" {
			depth[ri.ID] = depth[ri.Parent] + 1
		}
		ind := strings.Repeat("  ", depth[ri.ID]+1)
		state := "Stopped"
		if len(ri.ActiveOn) > 0 {
			state = "Started " + strings.Join(ri.ActiveOn, " ")
		}
		if strings.EqualFold(ri.TargetRole, "Stopped") {
			state += " (disabled)"
		}
		switch ri.Kind {
		case "primitive":
			fmt.Printf("%s* %s\t(%s):\t %s\n", ind, ri.ID, ri.Agent, state)
		default:
			fmt.Printf("%s* %s %s: [ %s ]:\t %s\n", ind, kindTitle[ri.Kind], ri.ID, strings.Join(ri.Members, " "), state)
		}
	}
	return nil
}

type constraintCmd struct {
	Location   constraintLocationCmd   `cmd:"" help:"Location constraints: add RSC NODE SCORE."`
	Colocation constraintColocationCmd `cmd:"" help:"Colocation constraints: add RSC [with] WITH [SCORE]."`
	Order      constraintOrderCmd      `cmd:"" help:"Order constraints: add FIRST [then] THEN."`
	Remove     constraintRemoveCmd     `cmd:"" help:"Remove constraints by id."`
	List       constraintListCmd       `cmd:"" help:"List the constraints."`
}

type constraintLocationCmd struct {
	Add    constraintLocationAddCmd `cmd:"" help:"Prefer (positive score) or avoid (negative) a node for a resource."`
	Remove constraintRemoveCmd      `cmd:"" help:"Remove constraints by id."`
	List   constraintListCmd        `cmd:"" help:"List the constraints."`
}

type constraintLocationAddCmd struct {
	Rsc   string `arg:"" help:"Resource id."`
	Node  string `arg:"" help:"Node name."`
	Score string `arg:"" help:"Score: an integer, INFINITY or -INFINITY."`
	ID    string `help:"Constraint id (default location-RSC-NODE-SCORE)." name:"id"`
}

func (c *constraintLocationAddCmd) Run(g *globals) error {
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		id, err := addLocation(cb, c.Rsc, c.Node, c.Score, c.ID)
		if err != nil {
			return "", err
		}
		return "added location constraint " + id, nil
	})
}

type constraintColocationCmd struct {
	Add    constraintColocationAddCmd `cmd:"" help:"Keep RSC where WITH runs (positive score) or away from it (negative)."`
	Remove constraintRemoveCmd        `cmd:"" help:"Remove constraints by id."`
	List   constraintListCmd          `cmd:"" help:"List the constraints."`
}

type constraintColocationAddCmd struct {
	Args []string `arg:"" help:"RSC [with] WITH [SCORE]; SCORE defaults to INFINITY." placeholder:"RSC [with] WITH [SCORE]"`
	ID   string   `help:"Constraint id (default colocation-RSC-WITH-SCORE)." name:"id"`
}

func (c *constraintColocationAddCmd) Run(g *globals) error {
	rsc, with, score, err := parseColocationArgs(c.Args)
	if err != nil {
		return err
	}
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		id, err := addColocation(cb, rsc, with, score, c.ID)
		if err != nil {
			return "", err
		}
		return "added colocation constraint " + id, nil
	})
}

// parseColocationArgs reads RSC [with] WITH [SCORE].
func parseColocationArgs(args []string) (rsc, with, score string, err error) {
	if len(args) >= 2 && args[1] == "with" {
		args = append(args[:1:1], args[2:]...)
	}
	if len(args) < 2 || len(args) > 3 {
		return "", "", "", errors.New("write `tachy constraint colocation add RSC with WITH [SCORE]`, e.g. `tachy constraint colocation add app with ip`")
	}
	if len(args) == 3 {
		score = args[2]
	}
	return args[0], args[1], score, nil
}

type constraintOrderCmd struct {
	Add    constraintOrderAddCmd `cmd:"" help:"Start THEN after FIRST (and stop it before, unless the kind says otherwise)."`
	Remove constraintRemoveCmd   `cmd:"" help:"Remove constraints by id."`
	List   constraintListCmd     `cmd:"" help:"List the constraints."`
}

type constraintOrderAddCmd struct {
	Args []string `arg:"" help:"FIRST [then] THEN." placeholder:"FIRST [then] THEN"`
	Kind string   `help:"Mandatory (default), Optional or Serialize." placeholder:"KIND"`
	ID   string   `help:"Constraint id (default order-FIRST-THEN-KIND)." name:"id"`
}

func (c *constraintOrderAddCmd) Run(g *globals) error {
	args := c.Args
	if len(args) == 3 && args[1] == "then" {
		args = []string{args[0], args[2]}
	}
	if len(args) != 2 {
		return errors.New("write `tachy constraint order add FIRST then THEN`, e.g. `tachy constraint order add ip then app`")
	}
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		id, err := addOrder(cb, args[0], args[1], c.Kind, c.ID)
		if err != nil {
			return "", err
		}
		return "added order constraint " + id, nil
	})
}

type constraintRemoveCmd struct {
	IDs []string `arg:"" help:"Constraint ids." name:"id"`
}

func (c *constraintRemoveCmd) Run(g *globals) error {
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		for _, id := range c.IDs {
			if err := removeConstraint(cb, id); err != nil {
				return "", err
			}
		}
		return "removed " + strings.Join(c.IDs, ", "), nil
	})
}

type constraintListCmd struct {
	JSON bool `help:"Print JSON."`
}

// constraintInfo is one constraint as constraint list --json prints it.
type constraintInfo struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"` // location, colocation, order, ticket
	Rsc         string     `json:"rsc,omitempty"`
	RscPattern  string     `json:"rsc_pattern,omitempty"`
	Node        string     `json:"node,omitempty"`
	With        string     `json:"with_rsc,omitempty"`
	First       string     `json:"first,omitempty"`
	Then        string     `json:"then,omitempty"`
	FirstAction string     `json:"first_action,omitempty"`
	ThenAction  string     `json:"then_action,omitempty"`
	Kind        string     `json:"kind,omitempty"`
	Symmetrical *bool      `json:"symmetrical,omitempty"`
	Score       string     `json:"score,omitempty"`
	Role        string     `json:"role,omitempty"`
	Ticket      string     `json:"ticket,omitempty"`
	Rules       int        `json:"rules,omitempty"`
	Sets        [][]string `json:"sets,omitempty"`
}

func constraintInfos(c *cib.CIB) []constraintInfo {
	out := []constraintInfo{}
	score := func(s *cib.Score) string {
		if s == nil {
			return ""
		}
		return s.String()
	}
	sets := func(ss []*cib.ResourceSet) [][]string {
		var out [][]string
		for _, s := range ss {
			out = append(out, s.Resources)
		}
		return out
	}
	for _, k := range c.Configuration.Constraints {
		ci := constraintInfo{ID: k.ConstraintID()}
		switch k := k.(type) {
		case *cib.Location:
			ci.Type, ci.Rsc, ci.RscPattern, ci.Node, ci.Score, ci.Role, ci.Rules, ci.Sets = "location", k.Rsc, k.RscPattern, k.Node, score(k.Score), string(k.Role), len(k.Rules), sets(k.Sets)
		case *cib.Colocation:
			ci.Type, ci.Rsc, ci.With, ci.Score, ci.Role, ci.Sets = "colocation", k.Rsc, k.WithRsc, score(k.Score), string(k.RscRole), sets(k.Sets)
		case *cib.Order:
			ci.Type, ci.First, ci.Then, ci.FirstAction, ci.ThenAction, ci.Kind, ci.Symmetrical, ci.Score, ci.Sets = "order", k.First, k.Then, k.FirstAction, k.ThenAction, k.Kind, k.Symmetrical, score(k.Score), sets(k.Sets)
			if ci.First != "" && ci.FirstAction == "" {
				ci.FirstAction = "start"
			}
			if ci.Then != "" && ci.ThenAction == "" {
				ci.ThenAction = ci.FirstAction
			}
			if ci.Kind == "" && ci.Score == "" {
				ci.Kind = "Mandatory"
			}
		case *cib.Ticket:
			ci.Type, ci.Rsc, ci.Ticket, ci.Role, ci.Sets = "ticket", k.Rsc, k.Ticket, string(k.RscRole), sets(k.Sets)
		}
		out = append(out, ci)
	}
	return out
}

func (c *constraintListCmd) Run(g *globals) error {
	cb, err := readCIB(g)
	if err != nil {
		return err
	}
	infos := constraintInfos(cb)
	if c.JSON {
		return printJSON(infos)
	}
	fmt.Print(formatConstraints(infos))
	return nil
}

// formatConstraints writes constraints as pcs constraint list does.
func formatConstraints(infos []constraintInfo) string {
	var b strings.Builder
	setText := func(sets [][]string) string {
		var parts []string
		for _, s := range sets {
			parts = append(parts, "set "+strings.Join(s, " "))
		}
		return strings.Join(parts, " ")
	}
	section := func(typ, title string, line func(ci constraintInfo) string) {
		fmt.Fprintf(&b, "%s:\n", title)
		for _, ci := range infos {
			if ci.Type == typ {
				fmt.Fprintf(&b, "  %s (id:%s)\n", line(ci), ci.ID)
			}
		}
	}
	section("location", "Location Constraints", func(ci constraintInfo) string {
		rsc := ci.Rsc
		if ci.RscPattern != "" {
			rsc = "pattern " + ci.RscPattern
		}
		if len(ci.Sets) > 0 {
			rsc = setText(ci.Sets)
		}
		switch {
		case ci.Node != "" && strings.HasPrefix(ci.Score, "-"):
			return fmt.Sprintf("Resource: %s Disabled on: Node: %s (score:%s)", rsc, ci.Node, ci.Score)
		case ci.Node != "":
			return fmt.Sprintf("Resource: %s Enabled on: Node: %s (score:%s)", rsc, ci.Node, ci.Score)
		}
		return fmt.Sprintf("Resource: %s Constraint: %d rule(s)", rsc, ci.Rules)
	})
	section("order", "Ordering Constraints", func(ci constraintInfo) string {
		s := setText(ci.Sets)
		if s == "" {
			s = fmt.Sprintf("%s %s then %s %s", ci.FirstAction, ci.First, ci.ThenAction, ci.Then)
		}
		if ci.Kind != "" {
			s += " (kind:" + ci.Kind + ")"
		} else if ci.Score != "" {
			s += " (score:" + ci.Score + ")"
		}
		if ci.Symmetrical != nil && !*ci.Symmetrical {
			s += " (non-symmetrical)"
		}
		return s
	})
	section("colocation", "Colocation Constraints", func(ci constraintInfo) string {
		s := setText(ci.Sets)
		if s == "" {
			s = ci.Rsc + " with " + ci.With
		}
		return s + " (score:" + ci.Score + ")"
	})
	section("ticket", "Ticket Constraints", func(ci constraintInfo) string {
		s := ci.Rsc
		if len(ci.Sets) > 0 {
			s = setText(ci.Sets)
		}
		return s + " (ticket:" + ci.Ticket + ")"
	})
	return b.String()
}

type nodeCmd struct {
	Standby     nodeStandbyCmd     `cmd:"" help:"Put a node in standby: its resources move away (node attribute standby=on)."`
	Unstandby   nodeUnstandbyCmd   `cmd:"" help:"Take a node out of standby."`
	Maintenance nodeMaintenanceCmd `cmd:"" help:"Put a node in maintenance: its resources are left alone, unmanaged (--off ends it)."`
	List        nodeListCmd        `cmd:"" help:"List the nodes with their standby and maintenance attributes."`
}

type nodeStandbyCmd struct {
	Node string `arg:"" help:"Node name."`
}

func (c *nodeStandbyCmd) Run(g *globals) error { return nodeAttr(g, c.Node, "standby", true) }

type nodeUnstandbyCmd struct {
	Node string `arg:"" help:"Node name."`
}

func (c *nodeUnstandbyCmd) Run(g *globals) error { return nodeAttr(g, c.Node, "standby", false) }

type nodeMaintenanceCmd struct {
	Node string `arg:"" help:"Node name."`
	Off  bool   `help:"End the node's maintenance."`
}

func (c *nodeMaintenanceCmd) Run(g *globals) error {
	return nodeAttr(g, c.Node, "maintenance", !c.Off)
}

func nodeAttr(g *globals, node, name string, on bool) error {
	return editConfig(g, func(cb *cib.CIB) (string, error) {
		var v *string
		msg := fmt.Sprintf("%s: %s off", node, name)
		if on {
			s := "on"
			v, msg = &s, fmt.Sprintf("%s: %s on", node, name)
		}
		if err := setNodeAttribute(cb, node, name, v); err != nil {
			return "", err
		}
		return msg, nil
	})
}

type nodeListCmd struct {
	JSON bool `help:"Print JSON."`
}

type nodeInfo struct {
	Name        string `json:"name"`
	ID          string `json:"id"`
	Online      bool   `json:"online"`
	Standby     bool   `json:"standby"`
	Maintenance bool   `json:"maintenance"`
}

func (c *nodeListCmd) Run(g *globals) error {
	cb, err := readCIB(g)
	if err != nil {
		return err
	}
	out := []nodeInfo{}
	for _, n := range cb.Configuration.Nodes {
		ni := nodeInfo{Name: n.Uname, ID: n.ID, Standby: isOn(nodeAttribute(n, "standby")), Maintenance: isOn(nodeAttribute(n, "maintenance"))}
		for _, st := range cb.Status.NodeStates {
			if st.ID == n.ID && st.InCCM == "true" && st.Crmd == "online" {
				ni.Online = true
			}
		}
		out = append(out, ni)
	}
	if c.JSON {
		return printJSON(out)
	}
	for _, n := range out {
		var flags []string
		if n.Online {
			flags = append(flags, "online")
		} else {
			flags = append(flags, "offline")
		}
		if n.Standby {
			flags = append(flags, "standby")
		}
		if n.Maintenance {
			flags = append(flags, "maintenance")
		}
		fmt.Printf("%s (id %s): %s\n", n.Name, n.ID, strings.Join(flags, ", "))
	}
	return nil
}

var kindTitle = map[string]string{"group": "Resource Group", "clone": "Clone Set", "promotable-clone": "Clone Set (promotable)", "bundle": "Container bundle"}

func isOn(v string) bool {
	switch strings.ToLower(v) {
	case "on", "true", "yes", "1", "y":
		return true
	}
	return false
}
