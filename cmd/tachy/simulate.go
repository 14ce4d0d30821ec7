package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/pe"
)

type simulateCmd struct {
	XML  string `name:"xml" short:"x" required:"" type:"existingfile" help:"Pacemaker CIB XML to schedule (as crm_simulate -x)."`
	Now  string `help:"Schedule as of this time (RFC 3339 or Unix seconds); default: the CIB's execution-date, else now." placeholder:"TIME"`
	JSON bool   `help:"Print the transition graph (actions, ordering edges) and the summary as JSON."`
	// As crm_simulate --node-fail: what-if for the fast path's contingency
	// plans (pe.ContingencyPlans computes the same for every node).
	NodeFail []string `name:"node-fail" short:"F" placeholder:"NODE" help:"Schedule as if this cluster node had just been lost (repeatable), as crm_simulate --node-fail."`
}

// simulateJSON is the transition graph as --json prints it.
type simulateJSON struct {
	Now     time.Time    `json:"now"`
	Actions []jsonAction `json:"actions"`
	Edges   []jsonEdge   `json:"edges"`
	Summary []string     `json:"transition_summary"`
	// Executed lists the graph's action ids in simulated execution order;
	// Stalled, those an ordering loop keeps from ever running.
	Executed []int `json:"executed"`
	Stalled  []int `json:"stalled,omitempty"`
}

type jsonAction struct {
	ID         int    `json:"id"`
	Key        string `json:"key"`
	Resource   string `json:"resource,omitempty"`
	Task       string `json:"task"`
	Node       string `json:"node,omitempty"`
	IntervalMs int64  `json:"interval_ms,omitempty"`
	Optional   bool   `json:"optional,omitempty"`
	Runnable   bool   `json:"runnable"`
	Pseudo     bool   `json:"pseudo,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Meta: the action's own meta-attributes (a migration's
	// migrate_source/migrate_target, a notification's variables).
	Meta map[string]string `json:"meta,omitempty"`
}

type jsonEdge struct {
	First int `json:"first"`
	Then  int `json:"then"`
	Kind  int `json:"kind"`
}

func (c *simulateCmd) Run() error {
	f, err := os.Open(c.XML)
	if err != nil {
		return err
	}
	defer f.Close()
	doc, err := cib.Import(f)
	if err != nil {
		return fmt.Errorf("%s: %w", c.XML, err)
	}
	now, err := c.now(doc)
	if err != nil {
		return err
	}
	// As crm_simulate: the CIB may have had its secrets masked.
	opts := pe.Options{Sanitized: true}
	before, err := pe.ScheduleWith(doc, now, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", c.XML, err)
	}
	current, res := doc, before
	for _, n := range c.NodeFail {
		if doc, err = pe.WithoutNode(doc, n, doc.HaveQuorum); err != nil {
			return fmt.Errorf("--node-fail %s: %w", n, err)
		}
	}
	if len(c.NodeFail) > 0 {
		if res, err = pe.ScheduleWith(doc, now, opts); err != nil {
			return fmt.Errorf("%s: %w", c.XML, err)
		}
	}
	if !c.JSON {
		// As crm_simulate -S: the cluster status, the requested
		// modifications, the transition summary, the simulated
		// execution, the revised status; written at once.
		var b strings.Builder
		b.WriteString(before.ClusterStatus(current))
		b.WriteString("\n")
		if len(c.NodeFail) > 0 {
			b.WriteString("Performing Requested Modifications:\n")
			for _, n := range c.NodeFail {
				b.WriteString("  * Failing node " + n + "\n")
			}
			b.WriteString("\n")
		}
		b.WriteString(res.String())
		b.WriteString("\n")
		b.WriteString(res.Execute().String())
		b.WriteString("\n")
		b.WriteString(res.RevisedStatus(doc))
		_, err := io.WriteString(os.Stdout, b.String())
		return err
	}
	out := simulateJSON{Now: now, Summary: res.Summary(), Actions: []jsonAction{}, Edges: []jsonEdge{}}
	for _, a := range res.Actions {
		out.Actions = append(out.Actions, jsonAction{ID: a.ID, Key: a.Key(), Resource: a.Resource, Task: a.Task, Node: a.Node,
			IntervalMs: a.Interval.Milliseconds(), Optional: a.Optional, Runnable: a.Runnable, Pseudo: a.Pseudo, Reason: a.Reason, Meta: a.Meta})
	}
	for _, e := range res.Edges {
		out.Edges = append(out.Edges, jsonEdge{First: e.First, Then: e.Then, Kind: int(e.Kind)})
	}
	ex := res.Execute()
	out.Executed = []int{}
	for _, a := range ex.Executed {
		out.Executed = append(out.Executed, a.ID)
	}
	for _, a := range ex.Stalled {
		out.Stalled = append(out.Stalled, a.ID)
	}
	return printJSON(out)
}

func (c *simulateCmd) now(doc *cib.CIB) (time.Time, error) {
	switch {
	case c.Now != "":
		if s, err := strconv.ParseInt(c.Now, 10, 64); err == nil {
			return time.Unix(s, 0).UTC(), nil
		}
		t, err := time.Parse(time.RFC3339, c.Now)
		if err != nil {
			return time.Time{}, fmt.Errorf("--now %q: use RFC 3339 (2026-11-25T12:00:00Z) or Unix seconds", c.Now)
		}
		return t, nil
	}
	return pe.SimulationTime(doc), nil
}
