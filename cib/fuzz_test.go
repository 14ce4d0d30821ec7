package cib

import (
	"bytes"
	"reflect"
	"testing"
)

func FuzzImport(f *testing.F) {
	f.Add([]byte(mini("", "", "")))
	f.Add([]byte(mini(`<master id="ms"><primitive id="st" class="ocf" provider="pacemaker" type="Stateful"/></master>`,
		`<rsc_colocation id="c1" rsc="a" with-rsc="b" score="INFINITY"/><rsc_order id="o1"><resource_set id="s1" sequential="false"><resource_ref id="a"/></resource_set></rsc_order>`,
		`<node_state id="1" uname="n1"><lrm id="1"><lrm_resources><lrm_resource id="a" class="ocf" provider="heartbeat" type="Dummy"><lrm_rsc_op id="a_start_0" operation="start" call-id="1" rc-code="0" op-status="0" interval="0"/></lrm_resource></lrm_resources></lrm></node_state>`)))
	f.Add([]byte(mini(`<bundle id="bd"><docker image="x" replicas="2"/><primitive id="bp" class="ocf" provider="heartbeat" type="apache"/></bundle>`,
		`<rsc_location id="l1" rsc="a"><rule id="r1" score-attribute="pingd"><expression id="e1" attribute="pingd" operation="defined"/></rule></rsc_location>`, "")))
	f.Add([]byte(`<cib epoch="1"><configuration><rsc_defaults><meta_attributes id="d"><rule id="dr" boolean-op="and"><rsc_expression id="re" class="ocf"/><op_expression id="oe" name="monitor" interval="10s"/></rule><nvpair id="dn" name="resource-stickiness" value="1"/></meta_attributes></rsc_defaults></configuration></cib>`))
	f.Add([]byte("<cib>\n<configuration>\n</cib>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Import(bytes.NewReader(data))
		if err != nil {
			if c != nil {
				t.Fatal("model returned with an error")
			}
			return
		}
		var out bytes.Buffer
		if err := Export(&out, c); err != nil {
			t.Fatalf("export of an imported CIB failed: %v", err)
		}
		c2, err := Import(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("re-import failed: %v\n%s", err, out.String())
		}
		if !reflect.DeepEqual(c, c2) {
			var out2 bytes.Buffer
			_ = Export(&out2, c2)
			t.Fatalf("round trip changed the model: %s", firstDiff(out.String(), out2.String()))
		}
	})
}
