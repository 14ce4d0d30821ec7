package fence

import (
	"strings"
	"testing"
	"time"
)

func ids(as []Attempt) string {
	var out []string
	for _, a := range as {
		var s []string
		for _, st := range a.Steps {
			s = append(s, st.Device.ID+"("+st.Port+")")
		}
		out = append(out, strings.Join(s, "+"))
	}
	return strings.Join(out, " | ")
}

func TestPlanWithoutTopology(t *testing.T) {
	devs := []DeviceConfig{
		{ID: "ipmi-n1", Type: "fence_ipmilan", Params: map[string]string{"pcmk_host_list": "n1"}},
		{ID: "pdu", Type: "fence_apc", Params: map[string]string{"pcmk_host_map": "n1:4;n2:7", "priority": "5"}},
		{ID: "any", Type: "fence_virsh", Params: map[string]string{}},
		{ID: "none-check", Type: "fence_x", Params: map[string]string{"pcmk_host_list": "n9", "pcmk_host_check": "none"}},
	}
	for _, tc := range []struct{ node, want string }{
		{"n1", "pdu(4) | ipmi-n1(n1) | any(n1) | none-check(n1)"}, // priority first, then configuration order
		{"n2", "pdu(7) | any(n2) | none-check(n2)"},
		{"n3", "any(n3) | none-check(n3)"},
	} {
		got, err := Plan(tc.node, nil, devs, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ids(got) != tc.want {
			t.Errorf("%s: %s, want %s", tc.node, ids(got), tc.want)
		}
	}
	got, _ := Plan("n3", nil, devs[:2], nil, nil)
	if len(got) != 0 {
		t.Errorf("no device lists n3, yet: %s", ids(got))
	}
}

func TestPlanTopology(t *testing.T) {
	devs := []DeviceConfig{
		{ID: "ipmi", Params: map[string]string{"pcmk_host_map": "n1:bmc1"}},
		{ID: "feed-a", Params: map[string]string{}},
		{ID: "feed-b", Params: map[string]string{}},
		{ID: "unused", Params: map[string]string{}},
	}
	levels := []Level{
		{ID: "l2", Index: 2, Target: "n1", Devices: []string{"feed-a", "feed-b"}},
		{ID: "l1", Index: 1, Target: "n1", Devices: []string{"ipmi"}},
		{ID: "rack", Index: 1, TargetAttribute: "rack", TargetValue: "r2", Devices: []string{"feed-b"}},
		{ID: "pat", Index: 1, TargetPattern: "^db-[0-9]+$", Devices: []string{"feed-a"}},
	}
	for _, tc := range []struct {
		node  string
		attrs map[string]string
		want  string
	}{
		{"n1", nil, "ipmi(bmc1) | feed-a(n1)+feed-b(n1)"}, // by index; a level's devices all at once
		{"n2", map[string]string{"rack": "r2"}, "feed-b(n2)"},
		{"db-12", nil, "feed-a(db-12)"},
		{"n3", nil, "feed-a(n3) | feed-b(n3) | unused(n3)"}, // no level: every capable device (ipmi maps n1 only)
	} {
		got, err := Plan(tc.node, tc.attrs, devs, levels, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ids(got) != tc.want {
			t.Errorf("%s: %s, want %s", tc.node, ids(got), tc.want)
		}
	}
	_, err := Plan("n1", nil, devs, []Level{{ID: "bad", Index: 1, Target: "n1", Devices: []string{"nope"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), `fencing-level bad names device "nope"`) {
		t.Errorf("a level naming a missing device: %v", err)
	}
	_, err = Plan("n1", nil, devs, []Level{{ID: "re", Index: 1, TargetPattern: "(", Devices: []string{"ipmi"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "target-pattern") {
		t.Errorf("a bad pattern: %v", err)
	}
}

func TestPlanDelays(t *testing.T) {
	half := func() float64 { return 0.5 }
	for _, tc := range []struct {
		params map[string]string
		want   time.Duration
		err    string
	}{
		{map[string]string{}, 0, ""},
		{map[string]string{"pcmk_delay_base": "2s"}, 2 * time.Second, ""},
		{map[string]string{"pcmk_delay_max": "10"}, 5 * time.Second, ""},                           // random half of 10 s
		{map[string]string{"pcmk_delay_base": "2s", "pcmk_delay_max": "10s"}, 6 * time.Second, ""}, // 2 + half of 8
		{map[string]string{"pcmk_delay_base": "n1:5s;n2:0s"}, 5 * time.Second, ""},                 // per node
		{map[string]string{"pcmk_delay_base": "n2:5s"}, 0, ""},
		{map[string]string{"pcmk_delay_base": "500ms"}, 500 * time.Millisecond, ""},
		{map[string]string{"pcmk_delay_base": "1min"}, time.Minute, ""},
		{map[string]string{"pcmk_delay_max": "soon"}, 0, "pcmk_delay_max"},
	} {
		got, err := Plan("n1", nil, []DeviceConfig{{ID: "d", Params: tc.params}}, nil, half)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want one naming %s", tc.params, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0].Steps[0].Delay != tc.want {
			t.Errorf("%v: %+v %v, want delay %v", tc.params, got, err, tc.want)
		}
	}
}
