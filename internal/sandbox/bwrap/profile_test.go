package bwrap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/sandbox"
)

func TestProfileValidate(t *testing.T) {
	if err := CPUProfile().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]Profile{
		"whole host": {Name: "x", ReadOnly: []string{"/"}},
		"homes":      {Name: "x", ReadOnly: []string{"/usr/bin", "/home/me/models"}},
		"lab state":  {Name: "x", ReadOnly: []string{"/var/lib/aar"}},
		"relative":   {Name: "x", ReadOnly: []string{"usr/bin"}},
		"unclean":    {Name: "x", ReadOnly: []string{"/usr/bin/../../root"}},
		"empty":      {Name: "x"},
		"bad name":   {Name: "X Y", ReadOnly: []string{"/usr/bin"}},
		"bad env":    {Name: "x", ReadOnly: []string{"/usr/bin"}, Env: map[string]string{"A=B": "c"}},
	}
	for what, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", what, p)
		}
	}
}

func TestLoadProfiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	write("shell.json", `{"name":"shell","read_only":["/usr/bin","/usr/lib","/usr/lib64"],"hidden":["/usr/lib/python3"],"env":{"AAR_PROFILE":"shell"},"check":["sh","-c","echo shell ok"]}`)
	got, err := LoadProfiles(dir)
	if err != nil || got["shell"].Env["AAR_PROFILE"] != "shell" {
		t.Fatalf("load: %v %+v", got, err)
	}
	if m, err := LoadProfiles(filepath.Join(dir, "missing")); err != nil || len(m) != 0 {
		t.Errorf("missing dir: %v %v", m, err)
	}
	for name, body := range map[string]string{
		"a.json": `{"name":"b","read_only":["/usr/bin"]}`,
		"c.json": `{"name":"c","read_only":["/usr/bin"],"gpu":true}`,
		"d.json": `{"name":"d","read_only":["/"]}`,
		"e.json": `{"name":`,
	} {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, name), []byte(body), 0o644)
		if _, err := LoadProfiles(d); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s %s: %v", name, body, err)
		}
	}
}

// TestCustomProfile runs a sandbox under a narrower profile: its env is set,
// its hidden directory is empty, and an unknown profile is refused.
func TestCustomProfile(t *testing.T) {
	needBwrap(t)
	shell := Profile{Name: "shell", ReadOnly: []string{"/usr/bin", "/usr/lib", "/usr/lib64"},
		Hidden: []string{"/usr/lib/python3"}, Env: map[string]string{"AAR_PROFILE": "shell"}}
	b := &Backend{Root: t.TempDir(), Profiles: map[string]Profile{"shell": shell}}
	s, err := b.Create(context.Background(), sandbox.Spec{ID: "p1", Profile: "shell"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy(context.Background())
	r := run(t, s, `echo "$AAR_PROFILE"; ls /usr/lib/python3 | wc -l; python3 -c 'import numpy.linalg' 2>/dev/null && echo numpy`, 0)
	if string(r.Stdout) != "shell\n0\n" {
		t.Errorf("shell profile: %q %q", r.Stdout, r.Stderr)
	}
	if _, err := b.Create(context.Background(), sandbox.Spec{ID: "p2", Profile: "gpu"}); err == nil || !strings.Contains(err.Error(), "sandbox-profiles/gpu.json") {
		t.Errorf("unknown profile: %v", err)
	}
	checks := Doctor(context.Background(), b)
	var saw bool
	for _, c := range checks {
		if c.Feature == "profile shell" {
			saw = c.OK
		}
	}
	if !saw {
		t.Errorf("doctor did not pass the shell profile: %+v", checks)
	}
}
