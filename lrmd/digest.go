package lrmd

import "github.com/tachy-ha/tachy/cib"

// OpDigest computes Pacemaker's op-digest of an operation's parameters
// (instance attributes and "CRM_meta_"-prefixed meta attributes), the value
// the controller records so that the scheduler can tell later whether the
// resource's definition changed. The computation lives in package cib
// (cib.OpDigest) so that the scheduler can use it too.
func OpDigest(params map[string]string) string { return cib.OpDigest(params) }

// Digest is the op-digest of o: OpDigest of its instance attributes, meta
// attributes and its interval and timeout.
func (o *Op) Digest() string { return OpDigest(o.allParams()) }

func digestInput(params map[string]string) string { return cib.OpDigestInput(params) }

func crmXMLEscape(s string) string { return cib.CRMXMLEscape(s) }
