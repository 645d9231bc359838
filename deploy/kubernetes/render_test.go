package kubernetes_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// layered reads top first, then bottom: a synthetic overlay over the real
// manifests.
type layered struct{ top, bottom fs.FS }

func (l layered) Open(name string) (fs.File, error) {
	if f, err := l.top.Open(name); err == nil {
		return f, nil
	}
	return l.bottom.Open(name)
}

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range files {
		m[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return m
}

const fixtureBase = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: one
resources: [objects.yaml]
secretGenerator:
  - name: creds
    envs: [creds.env]
    literals: [extra=x=y]
    options:
      disableNameSuffixHash: true
      labels: {tier: db}
`

const fixtureObjects = `apiVersion: v1
kind: Namespace
metadata:
  name: placeholder
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: worker
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: worker
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: worker}
subjects:
  - {kind: ServiceAccount, name: worker}
  - {kind: ServiceAccount, name: worker, namespace: default}
  - {kind: ServiceAccount, name: worker, namespace: elsewhere}
  - {kind: ServiceAccount, name: not-ours}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
rules: []
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata:
      labels: {app: app}
    spec:
      initContainers:
        - {name: init, image: "aar@sha256:0000"}
      containers:
        - {name: main, image: aar:old, resources: {requests: {cpu: 1}}}
        - {name: side, image: "registry:5000/aar:keep"}
        - {name: pg, image: postgres:15}
`

// subsetFixture exercises every feature of the renderer; TestRenderSubset
// checks the result field by field, TestKustomizeAgrees against kustomize.
func subsetFixture() map[string]string {
	return map[string]string{
		"base/kustomization.yaml": fixtureBase,
		"base/objects.yaml":       fixtureObjects,
		"base/creds.env":          "# a comment\n\nuser=u\npassword=p=q\n",
		"over/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: two
resources: [../base]
labels:
  - pairs: {team: aar}
    includeTemplates: true
images:
  - {name: aar, newName: reg.example/aar, newTag: v2}
patches:
  - patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: app}
      spec:
        template:
          spec:
            containers:
              - {name: main, resources: {requests: {memory: 1Gi}}}
secretGenerator:
  - name: creds
    behavior: merge
    literals: [password=new]
    options: {disableNameSuffixHash: true}
`,
	}
}

func TestRenderSubset(t *testing.T) {
	objs, err := render(mapFS(subsetFixture()), "over")
	if err != nil {
		t.Fatal(err)
	}
	m := decodeAll(t, "over", objs)
	byID := map[string]int{}
	for i, u := range objs {
		byID[id(u)] = i
	}
	u := func(key string) map[string]any {
		i, ok := byID[key]
		if !ok {
			t.Fatalf("no %s in %v", key, m.ids())
		}
		return objs[i].Object
	}
	want := []struct{ name, got, want string }{
		{"Namespace renamed", objs[0].GetName(), "two"},
		{"namespaced object moved", objs[byID["/ServiceAccount/worker"]].GetNamespace(), "two"},
		{"ClusterRole stays cluster-wide", objs[byID["rbac.authorization.k8s.io/ClusterRole/reader"]].GetNamespace(), ""},
		{"our subject follows", str(u("rbac.authorization.k8s.io/RoleBinding/worker"), "subjects", 0, "namespace"), "two"},
		{"our subject in default follows", str(u("rbac.authorization.k8s.io/RoleBinding/worker"), "subjects", 1, "namespace"), "two"},
		{"our name elsewhere stays", str(u("rbac.authorization.k8s.io/RoleBinding/worker"), "subjects", 2, "namespace"), "elsewhere"},
		{"a foreign subject stays", str(u("rbac.authorization.k8s.io/RoleBinding/worker"), "subjects", 3, "namespace"), ""},
		{"image tag", str(u("apps/Deployment/app"), "spec", "template", "spec", "containers", 0, "image"), "reg.example/aar:v2"},
		{"image digest replaced by tag", str(u("apps/Deployment/app"), "spec", "template", "spec", "initContainers", 0, "image"), "reg.example/aar:v2"},
		{"registry port is not a tag", str(u("apps/Deployment/app"), "spec", "template", "spec", "containers", 1, "image"), "registry:5000/aar:keep"},
		{"other image untouched", str(u("apps/Deployment/app"), "spec", "template", "spec", "containers", 2, "image"), "postgres:15"},
		{"patch adds", str(u("apps/Deployment/app"), "spec", "template", "spec", "containers", 0, "resources", "requests", "memory"), "1Gi"},
		{"patch keeps", str(u("apps/Deployment/app"), "spec", "template", "spec", "containers", 0, "resources", "requests", "cpu"), "1"},
		{"patch merges by name", str(u("apps/Deployment/app"), "spec", "template", "spec", "containers", 1, "name"), "side"},
		{"label on object", objs[byID["/ServiceAccount/worker"]].GetLabels()["team"], "aar"},
		{"label on template", str(u("apps/Deployment/app"), "spec", "template", "metadata", "labels", "team"), "aar"},
		{"selector untouched", str(u("apps/Deployment/app"), "spec", "selector", "matchLabels", "team"), ""},
		{"secret from env file", secretValue(objs[byID["/Secret/creds"]], "user"), "u"},
		{"secret merged", secretValue(objs[byID["/Secret/creds"]], "password"), "new"},
		{"literal value keeps '='", secretValue(objs[byID["/Secret/creds"]], "extra"), "x=y"},
		{"generator labels", objs[byID["/Secret/creds"]].GetLabels()["tier"], "db"},
		{"secret namespace", objs[byID["/Secret/creds"]].GetNamespace(), "two"},
	}
	for _, w := range want {
		if w.got != w.want {
			t.Errorf("%s: got %q, want %q", w.name, w.got, w.want)
		}
	}
}

// TestRenderRefuses: what the renderer does not implement is an error, not
// a silent difference from kustomize.
func TestRenderRefuses(t *testing.T) {
	head := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
	cases := []struct {
		name, kustomization, err string
	}{
		{"unknown field", head + "commonLabels: {a: b}\n", `unknown field "commonLabels"`},
		{"selector labels", head + "labels: [{pairs: {a: b}, includeSelectors: true}]\n", "includeSelectors"},
		{"name hash", head + "secretGenerator: [{name: s, literals: [a=b]}]\n", "disableNameSuffixHash"},
		{"json6902 target", head + "resources: [objects.yaml]\npatches: [{path: p.yaml, target: {kind: Deployment}}]\n", `unknown field "target"`},
		{"patch without target object", head + "resources: [objects.yaml]\npatches: [{patch: '{apiVersion: apps/v1, kind: Deployment, metadata: {name: nope}}'}]\n", "no object apps/Deployment/nope"},
		{"duplicate object", head + "resources: [objects.yaml, objects.yaml]\n", "two objects"},
		{"merge into nothing", head + "secretGenerator: [{name: s, behavior: merge, literals: [a=b], options: {disableNameSuffixHash: true}}]\n", "no Secret of that name"},
		{"wrong kind", "apiVersion: v1\nkind: ConfigMap\n", "want kustomize.config.k8s.io/v1beta1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := mapFS(map[string]string{"k/kustomization.yaml": c.kustomization, "k/objects.yaml": fixtureObjects})
			_, err := render(fsys, "k")
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("err = %v, want one containing %q", err, c.err)
			}
		})
	}
}

// str reads a string at a path of map keys and slice indexes.
func str(obj any, path ...any) string {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := obj.(map[string]any)
			if !ok {
				return ""
			}
			obj = m[k]
		case int:
			s, ok := obj.([]any)
			if !ok || k >= len(s) {
				return ""
			}
			obj = s[k]
		}
	}
	if obj == nil {
		return ""
	}
	return fmt.Sprint(obj)
}

// TestKustomizeAgrees renders each kustomization with kustomize itself, as
// built into kubectl (`kubectl kustomize`, offline), where kubectl is
// installed, and wants the same objects as the test renderer.
func TestKustomizeAgrees(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the renderer is not compared with kustomize")
	}
	if out, err := exec.Command(kubectl, "version", "--client").CombinedOutput(); err == nil {
		t.Logf("%s", bytes.TrimSpace(out))
	}
	fixture := t.TempDir()
	for name, data := range subsetFixture() {
		p := filepath.Join(fixture, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type tree struct{ root, dir string }
	dirs := map[string]tree{"subset fixture": {fixture, "over"}}
	for _, dir := range kustomizations {
		dirs[dir] = tree{".", dir}
	}
	for name, tr := range dirs {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(tr.root, tr.dir)
			var stderr bytes.Buffer
			cmd := exec.Command(kubectl, "kustomize", dir)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v: %s", dir, err, stderr.Bytes())
			}
			theirs, err := readObjects(mapFS(map[string]string{"out.yaml": string(out)}), "out.yaml")
			if err != nil {
				t.Fatal(err)
			}
			ours, err := render(os.DirFS(tr.root), tr.dir)
			if err != nil {
				t.Fatal(err)
			}
			byID := map[string]*unstructured.Unstructured{}
			for _, u := range theirs {
				byID[id(u)] = u
			}
			if len(ours) != len(theirs) {
				t.Errorf("%d objects, kustomize has %d", len(ours), len(theirs))
			}
			for _, u := range ours {
				k, ok := byID[id(u)]
				if !ok {
					t.Errorf("%s: kustomize does not have it", id(u))
					continue
				}
				if d := diff(normalize(t, u), normalize(t, k), ""); len(d) > 0 {
					t.Errorf("%s differs from kustomize's (ours != theirs):\n%s", id(u), strings.Join(d, "\n"))
				}
			}
		})
	}
}

// normalize round-trips an object through JSON, so numbers compare alike.
func normalize(t *testing.T, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(toJSON(u), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// diff lists where a and b differ, as path: a != b.
func diff(a, b any, at string) []string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		var out []string
		for k := range x {
			out = append(out, diff(x[k], y[k], at+"."+k)...)
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				out = append(out, diff(nil, y[k], at+"."+k)...)
			}
		}
		return out
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			break
		}
		var out []string
		for i := range x {
			out = append(out, diff(x[i], y[i], fmt.Sprintf("%s[%d]", at, i))...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	return []string{fmt.Sprintf("  %s: %v != %v", at, a, b)}
}
