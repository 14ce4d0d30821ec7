package cib

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// OpDigest computes Pacemaker's op-digest of an operation's parameters, the
// value the controller records so that the scheduler can tell later whether
// the resource's definition changed (and restart or reload it).
//
// It follows Pacemaker 2.1: the controller puts every parameter of the
// operation (instance attributes and CRM_meta_* meta attributes) as
// attributes on a <parameters/> element, drops what
// pcmk__filter_op_for_digest drops (every CRM_meta_* attribute except
// CRM_meta_timeout when CRM_meta_interval is not 0, and id,
// crm_feature_set, op-digest, on_node, on_node_uuid, pcmk_external_ip),
// sorts the attributes by name, serialises the element the way
// pcmk__xml2text does (crm_xml_escape on values) between a leading space
// and a trailing newline (the "v1" digest format) and takes the MD5 of that.
//
// params are as Pacemaker's executor sees them: instance attributes and
// "CRM_meta_"-prefixed meta attributes.
func OpDigest(params map[string]string) string {
	return md5hex(digestInput(params))
}

// OpDigestInput is the text OpDigest takes the MD5 of (for diagnostics).
func OpDigestInput(params map[string]string) string { return digestInput(params) }

// CRMXMLEscape escapes a value as Pacemaker's crm_xml_escape does for the
// digest text (see OpDigest).
func CRMXMLEscape(s string) string { return crmXMLEscape(s) }

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// digestFiltered are the non-meta names pcmk__filter_op_for_digest drops.
var digestFiltered = map[string]bool{
	"id": true, "crm_feature_set": true, "op-digest": true,
	"on_node": true, "on_node_uuid": true, "pcmk_external_ip": true,
}

func digestInput(params map[string]string) string {
	interval := uint64(0)
	if v, ok := params["CRM_meta_interval"]; ok {
		interval = parseMsLikePacemaker(v)
	}
	names := make([]string, 0, len(params))
	for k := range params {
		if strings.HasPrefix(k, "CRM_meta_") || digestFiltered[k] || !validXMLName(k) {
			continue
		}
		names = append(names, k)
	}
	timeout, hasTimeout := params["CRM_meta_timeout"]
	if interval != 0 && hasTimeout {
		names = append(names, "CRM_meta_timeout")
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(" <parameters")
	for _, k := range names {
		v := params[k]
		if k == "CRM_meta_timeout" {
			v = timeout
		}
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(crmXMLEscape(v))
		b.WriteByte('"')
	}
	b.WriteString("/>\n")
	return b.String()
}

// parseMsLikePacemaker reads an interval the way crm_element_value_ms
// does: a leading decimal integer (strtoll), anything unparsable or
// negative is 0.
func parseMsLikePacemaker(s string) uint64 {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	end := 0
	if end < len(s) && (s[end] == '+' || s[end] == '-') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return uint64(n)
}

// validXMLName reports whether name can be an attribute of the digested
// XML, so that a parameter Pacemaker could never have stored is not
// digested either. It allows letters, digits, '_', ':', '.', '-' and any
// non-ASCII byte anywhere: libxml2 does not check the names it is given,
// and the corpus records digests of parameters named "1" (stonith-2).
func validXMLName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 0x80, c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
		case c >= '0' && c <= '9' || c == '.' || c == '-':
		default:
			return false
		}
	}
	return true
}

// crmXMLEscape escapes an attribute value as Pacemaker 2.1's
// crm_xml_escape does for the digest text: the five XML entities, a tab
// as four spaces, newline and carriage return as the two characters \n
// and \r, other bytes outside printable ASCII as a backslash and three (or
// more) octal digits of the (signed) char, except that two bytes in a row
// with the high bit set (UTF-8) are copied as they are.
func crmXMLEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c&0x80 != 0 && i+1 < len(s) && s[i+1]&0x80 != 0 {
			b.WriteByte(c)
			b.WriteByte(s[i+1])
			i++
			continue
		}
		switch c {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		case '&':
			b.WriteString("&amp;")
		case '\t':
			b.WriteString("    ")
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < ' ' || c > '~' {
				// printf("\\%.3o", (int)(char)c): a negative char prints as
				// its 32-bit two's complement.
				b.WriteString(fmt.Sprintf(`\%.3o`, uint32(int32(int8(c)))))
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}
