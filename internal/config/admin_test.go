package config

import (
	"strings"
	"testing"
)

func TestAdmin(t *testing.T) {
	const base = "listeners: [{listen: \":1\"}]\npools: [{name: p, backends: [a:1]}]\n"
	c, err := Parse([]byte(base))
	if err != nil || c.Admin != nil {
		t.Fatalf("no admin key: Admin = %+v, %v; want nil", c.Admin, err)
	}
	for _, tc := range []struct {
		yaml string
		want Admin
	}{
		{"admin: {}", Admin{Listen: DefaultAdminListen}},
		{"admin: {listen: \"[::1]:9999\"}", Admin{Listen: "[::1]:9999"}},
		{"admin: {listen: \"localhost:9999\"}", Admin{Listen: "localhost:9999"}},
		{"admin: {listen: \":9090\", token: s3cret, protect_metrics: true}", Admin{Listen: ":9090", Token: "s3cret", ProtectMetrics: true}},
	} {
		c, err := Parse([]byte(base + tc.yaml))
		if err != nil || c.Admin == nil || *c.Admin != tc.want {
			t.Errorf("Parse(%q): Admin = %+v, %v; want %+v", tc.yaml, c.Admin, err, tc.want)
		}
	}
	for _, tc := range []struct{ yaml, want string }{
		{"admin: {listen: \"0.0.0.0:9090\"}", `line 3: admin.listen: "0.0.0.0:9090": not a loopback address, and no admin.token is set`},
		{"admin: {listen: \":9090\"}", `admin.listen: ":9090": not a loopback address`},
		{"admin: {listen: \"10.0.0.1:9090\"}", `not a loopback address`},
		{"admin: {listen: \"127.0.0.1:x\"}", `admin.listen: "127.0.0.1:x": invalid port`},
		{"admin: {token: \"a b\"}", `admin.token: must not contain spaces or control characters`},
		{"admin: {listen: 1}", `admin.listen`},
		{"admin: {lisen: \"127.0.0.1:1\"}", `admin.lisen: unknown key (known: listen, token, protect_metrics)`},
	} {
		_, err := Parse([]byte(base + tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
}

func TestCheckAdminExposure(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		exposed bool
	}{
		{"127.0.0.1:9090", false},
		{"127.1.2.3:9090", false},
		{"[::1]:9090", false},
		{"localhost:9090", false},
		{"LocalHost:9090", false},
		{"[::ffff:127.0.0.1]:9090", false},
		{"0.0.0.0:9090", true},
		{":9090", true},
		{"[::]:9090", true},
		{"10.0.0.1:9090", true},
		{"example.com:9090", true},
	} {
		err := CheckAdminExposure(tc.addr, "")
		if (err != nil) != tc.exposed {
			t.Errorf("CheckAdminExposure(%q, \"\") = %v, want error %v", tc.addr, err, tc.exposed)
		}
		if err != nil && !strings.Contains(err.Error(), "not a loopback address, and no admin.token is set") {
			t.Errorf("CheckAdminExposure(%q, \"\") = %v, want the reason and how to fix it", tc.addr, err)
		}
		if err := CheckAdminExposure(tc.addr, "tok"); err != nil {
			t.Errorf("CheckAdminExposure(%q, \"tok\") = %v, want nil", tc.addr, err)
		}
	}
	if err := CheckAdminExposure("9090", ""); err == nil {
		t.Error(`CheckAdminExposure("9090", "") = nil, want an address error`)
	}
}
