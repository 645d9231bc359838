package kubernetes_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"

	kube "github.com/aar-lab/aar/internal/sandbox/kubernetes"
)

// The names other parts of aar rely on.
const (
	namespace  = "aar"
	labName    = "aar-lab"
	labPort    = 8420
	labLabel   = "app.kubernetes.io/name"
	pgName     = "aar-postgres"
	workerName = "aar-worker"
	runConfig  = "aar-run"
)

// kustomizations are the directories `kubectl apply -k` takes.
var kustomizations = []string{"base", "overlays/dev", "overlays/gpu"}

// examples are plain manifests (kubectl create -f / apply -f).
var examples = []string{"examples/runs-pvc.yaml", "examples/run-job.yaml"}

// strict decodes with client-go's scheme and fails on unknown or duplicate
// fields and on wrong types.
var strict = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// manifests are rendered objects, each with its typed form.
type manifests struct {
	objs  []*unstructured.Unstructured
	typed []runtime.Object
}

// build renders the kustomization in dir (relative to deploy/kubernetes) and
// decodes every object strictly.
func build(t *testing.T, dir string) *manifests {
	t.Helper()
	objs, err := render(os.DirFS("."), dir)
	if err != nil {
		t.Fatalf("render %s: %v", dir, err)
	}
	return decodeAll(t, dir, objs)
}

// readExample reads and strictly decodes one file of examples/.
func readExample(t *testing.T, file string) *manifests {
	t.Helper()
	objs, err := readObjects(os.DirFS("."), file)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, file, objs)
}

func decodeAll(t *testing.T, where string, objs []*unstructured.Unstructured) *manifests {
	t.Helper()
	if len(objs) == 0 {
		t.Fatalf("%s: no objects", where)
	}
	m := &manifests{objs: objs}
	for _, u := range objs {
		obj, gvk, err := strict.Decode(toJSON(u), nil, nil)
		if err != nil {
			t.Fatalf("%s: %s %s: %v", where, u.GetKind(), u.GetName(), err)
		}
		if gvk.Version != u.GroupVersionKind().Version {
			t.Fatalf("%s: %s decoded as %s", where, id(u), gvk)
		}
		m.typed = append(m.typed, obj)
	}
	return m
}

// get finds the one object of type T named name.
func get[T interface {
	runtime.Object
	GetName() string
}](t *testing.T, m *manifests, name string) T {
	t.Helper()
	var found []T
	for _, o := range m.typed {
		if v, ok := o.(T); ok && v.GetName() == name {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("want one %T named %s, have %d", zero, name, len(found))
	}
	return found[0]
}

// all returns every object of type T.
func all[T runtime.Object](m *manifests) []T {
	var out []T
	for _, o := range m.typed {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// ids lists kind/name of every object, sorted.
func (m *manifests) ids() []string {
	var out []string
	for _, u := range m.objs {
		out = append(out, u.GetKind()+"/"+u.GetName())
	}
	sort.Strings(out)
	return out
}

// podTemplates are the pod templates of the workloads, by kind/name.
func (m *manifests) podTemplates() map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for _, o := range m.typed {
		switch w := o.(type) {
		case *appsv1.Deployment:
			out["Deployment/"+w.Name] = &w.Spec.Template
		case *appsv1.StatefulSet:
			out["StatefulSet/"+w.Name] = &w.Spec.Template
		case *batchv1.Job:
			out["Job/"+w.GenerateName+w.Name] = &w.Spec.Template
		case *appsv1.DaemonSet, *appsv1.ReplicaSet, *batchv1.CronJob, *corev1.Pod:
			panic(fmt.Sprintf("podTemplates: add %T", o))
		}
	}
	return out
}

func TestManifestsDecodeStrictly(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			m := build(t, dir)
			if err := checkUnique(m.objs); err != nil {
				t.Fatal(err)
			}
			// Each kustomization's own resources get its namespace, so
			// every overlay must set it too.
			for _, u := range m.objs {
				if isNamespaced(u) && u.GetNamespace() != namespace {
					t.Errorf("%s: namespace %q, want %q", id(u), u.GetNamespace(), namespace)
				}
				if u.GetLabels()["app.kubernetes.io/part-of"] != "aar" {
					t.Errorf("%s: no app.kubernetes.io/part-of=aar label", id(u))
				}
			}
			t.Logf("%d objects: %s", len(m.objs), strings.Join(m.ids(), " "))
		})
	}
	for _, f := range examples {
		t.Run(f, func(t *testing.T) { readExample(t, f) })
	}
}

func TestBaseInventory(t *testing.T) {
	m := build(t, "base")
	want := []string{
		"ConfigMap/aar-run",
		"Deployment/aar-lab",
		"Namespace/aar",
		"NetworkPolicy/aar-lab",
		"NetworkPolicy/aar-postgres",
		"PersistentVolumeClaim/aar-lab-data",
		"Role/aar-lab",
		"Role/aar-worker",
		"RoleBinding/aar-lab",
		"RoleBinding/aar-worker",
		"Secret/aar-postgres",
		"Service/aar-lab",
		"Service/aar-postgres",
		"ServiceAccount/aar-lab",
		"ServiceAccount/aar-worker",
		"ServiceAccount/default",
		"StatefulSet/aar-postgres",
	}
	if got := m.ids(); !slices.Equal(got, want) {
		t.Errorf("base objects:\n got %v\nwant %v", got, want)
	}
	ns := get[*corev1.Namespace](t, m, namespace)
	// Pod Security "restricted" is what keeps a worker's right to create
	// pods from being a right to own the node.
	for _, mode := range []string{"enforce", "warn", "audit"} {
		if v := ns.Labels["pod-security.kubernetes.io/"+mode]; v != "restricted" {
			t.Errorf("namespace label pod-security.kubernetes.io/%s = %q, want restricted", mode, v)
		}
	}
}

// TestPodSecurity checks every pod template, the example Job's included,
// against Pod Security "restricted" and aar's own rules (read-only root, a
// writable /tmp, resources, no service links, no token unless needed).
func TestPodSecurity(t *testing.T) {
	pods := build(t, "base").podTemplates()
	for k, v := range readExample(t, "examples/run-job.yaml").podTemplates() {
		pods[k] = v
	}
	wantToken := map[string]bool{"Job/aar-run-": true} // the supervisor creates worker pods
	if len(pods) != 3 {
		t.Fatalf("pod templates %v, want the lab, PostgreSQL and the run Job", pods)
	}
	for name, tmpl := range pods {
		t.Run(name, func(t *testing.T) {
			spec := &tmpl.Spec
			if spec.HostNetwork || spec.HostPID || spec.HostIPC {
				t.Error("uses a host namespace")
			}
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken != wantToken[name] {
				t.Errorf("automountServiceAccountToken = %v, want explicitly %v", deref(spec.AutomountServiceAccountToken), wantToken[name])
			}
			if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
				t.Error("enableServiceLinks is not false (service links would put AAR_LAB_* variables into the environment)")
			}
			psc := spec.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Fatal("pod securityContext.runAsNonRoot is not true")
			}
			if psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.RunAsGroup == nil || psc.FSGroup == nil {
				t.Error("pod securityContext lacks a non-zero runAsUser, runAsGroup or fsGroup")
			}
			if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Error("pod seccompProfile is not RuntimeDefault")
			}
			volumes := map[string]corev1.Volume{}
			for _, v := range spec.Volumes {
				volumes[v.Name] = v
				if v.HostPath != nil {
					t.Errorf("volume %s is a hostPath", v.Name)
				}
			}
			for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
				sc := c.SecurityContext
				if sc == nil {
					t.Fatalf("container %s: no securityContext", c.Name)
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
				}
				if sc.Privileged != nil && *sc.Privileged {
					t.Errorf("container %s: privileged", c.Name)
				}
				if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
				}
				if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
					t.Errorf("container %s: capabilities %+v, want drop [ALL] and no add", c.Name, sc.Capabilities)
				}
				if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
					t.Errorf("container %s: runAsUser 0", c.Name)
				}
				if c.ImagePullPolicy != corev1.PullIfNotPresent {
					t.Errorf("container %s: imagePullPolicy %q, want IfNotPresent", c.Name, c.ImagePullPolicy)
				}
				req, lim := c.Resources.Requests, c.Resources.Limits
				if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
					t.Errorf("container %s: resources %+v: want cpu and memory requests and a memory limit", c.Name, c.Resources)
				} else if lim.Memory().Cmp(*req.Memory()) < 0 || (!lim.Cpu().IsZero() && lim.Cpu().Cmp(*req.Cpu()) < 0) {
					t.Errorf("container %s: limits below requests: %+v", c.Name, c.Resources)
				}
				tmp := false
				for _, vm := range c.VolumeMounts {
					if vm.MountPath == "/tmp" && volumes[vm.Name].EmptyDir != nil {
						tmp = true
					}
				}
				if !tmp {
					t.Errorf("container %s: read-only root but no emptyDir at /tmp", c.Name)
				}
			}
		})
	}
}

func TestLabDeployment(t *testing.T) {
	m := build(t, "base")
	d := get[*appsv1.Deployment](t, m, labName)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas = %v, want 1 (one writer per ledger)", deref(d.Spec.Replicas))
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q, want Recreate: a rolling update runs two labs at once", d.Spec.Strategy.Type)
	}
	if d.Spec.Template.Labels[labLabel] != labName {
		t.Errorf("pod label %s = %q, want %q: the sandbox backend's NetworkPolicies select the lab by it", labLabel, d.Spec.Template.Labels[labLabel], labName)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the Deployment's selector %v does not select its own pods (%v)", d.Spec.Selector, err)
	}
	spec := d.Spec.Template.Spec
	if spec.ServiceAccountName != labName {
		t.Errorf("serviceAccountName %q, want %q", spec.ServiceAccountName, labName)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image != "aar:latest" {
		t.Errorf("image %q, want aar:latest (overridable with kustomize images:)", c.Image)
	}
	if !slices.Equal(c.Command, []string{"/usr/local/bin/aar"}) || len(c.Args) == 0 || c.Args[0] != "lab" {
		t.Errorf("command %q args %q, want /usr/local/bin/aar lab …", c.Command, c.Args)
	}
	flags := flagValues(c.Args)
	if flags["--addr"] != fmt.Sprintf("0.0.0.0:%d", labPort) {
		t.Errorf("--addr %q, want 0.0.0.0:%d", flags["--addr"], labPort)
	}
	db := flags["--db"]
	if want := fmt.Sprintf("postgres://$(PGUSER)@%s:5432/$(PGDATABASE)?", pgName); !strings.HasPrefix(db, want) {
		t.Errorf("--db %q, want it to start %q", db, want)
	}
	for _, a := range c.Args {
		if strings.Contains(a, "PASSWORD") {
			t.Errorf("argument %q carries the password: ps shows arguments; use PGPASSWORD", a)
		}
	}
	checkRefsDefined(t, m, c)
	env := envByName(c)
	pw := env["PGPASSWORD"]
	if pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil || pw.ValueFrom.SecretKeyRef.Name != pgName {
		t.Errorf("PGPASSWORD does not come from the %s Secret: %+v", pgName, pw)
	}
	checkSecretRefs(t, m, c)

	// The data directory is the claim, and the claim exists.
	dataDir := env["AAR_DATA"].Value
	if dataDir == "" {
		t.Fatal("no AAR_DATA")
	}
	claim := ""
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == dataDir {
			for _, v := range spec.Volumes {
				if v.Name == vm.Name && v.PersistentVolumeClaim != nil {
					claim = v.PersistentVolumeClaim.ClaimName
				}
			}
		}
	}
	if claim == "" {
		t.Fatalf("AAR_DATA %s is not on a PersistentVolumeClaim", dataDir)
	}
	pvc := get[*corev1.PersistentVolumeClaim](t, m, claim)
	checkClaim(t, pvc.Name, pvc.Spec)

	// Probes: /healthz on the port the lab listens on.
	port := containerPort(t, c, "http")
	if port != labPort {
		t.Errorf("container port http = %d, want %d", port, labPort)
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want an httpGet on /healthz, have %+v", name, p)
			continue
		}
		if p.HTTPGet.Path != "/healthz" || resolvePort(t, c, p.HTTPGet.Port) != labPort {
			t.Errorf("%s probe: GET %s on port %s, want /healthz on %d", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), labPort)
		}
	}
}

func TestPostgres(t *testing.T) {
	m := build(t, "base")
	s := get[*appsv1.StatefulSet](t, m, pgName)
	if s.Spec.Replicas == nil || *s.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1", deref(s.Spec.Replicas))
	}
	spec := s.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if !strings.HasPrefix(c.Image, "postgres:15") {
		t.Errorf("image %q, want postgres:15…", c.Image)
	}
	psc := spec.SecurityContext
	if deref(psc.RunAsUser) != 999 || deref(psc.RunAsGroup) != 999 || deref(psc.FSGroup) != 999 {
		t.Errorf("runAsUser/runAsGroup/fsGroup %v/%v/%v, want the postgres image's 999", deref(psc.RunAsUser), deref(psc.RunAsGroup), deref(psc.FSGroup))
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.Exec == nil || !strings.Contains(strings.Join(p.Exec.Command, " "), "pg_isready") {
			t.Errorf("%s probe %+v, want pg_isready", name, p)
		}
	}
	checkSecretRefs(t, m, c)
	env := envByName(c)
	for _, k := range []string{"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} {
		if r := env[k].ValueFrom; r == nil || r.SecretKeyRef == nil || r.SecretKeyRef.Name != pgName {
			t.Errorf("%s does not come from the %s Secret", k, pgName)
		}
	}
	// The data directory is on the claim template.
	if len(s.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volumeClaimTemplates, want 1", len(s.Spec.VolumeClaimTemplates))
	}
	vct := s.Spec.VolumeClaimTemplates[0]
	checkClaim(t, "volumeClaimTemplate "+vct.Name, vct.Spec)
	mount := ""
	for _, vm := range c.VolumeMounts {
		if vm.Name == vct.Name {
			mount = vm.MountPath
		}
	}
	if mount == "" || !strings.HasPrefix(env["PGDATA"].Value, mount+"/") {
		t.Errorf("PGDATA %q is not a subdirectory of the claim's mount %q", env["PGDATA"].Value, mount)
	}
	// The governing Service is headless and points at the server's port.
	svc := get[*corev1.Service](t, m, s.Spec.ServiceName)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (headless)", svc.Name, svc.Spec.ClusterIP)
	}
	// The Secret: the keys, and a placeholder password that says so.
	sec := get[*corev1.Secret](t, m, pgName)
	for _, k := range []string{"username", "password", "database"} {
		if len(sec.Data[k]) == 0 {
			t.Errorf("Secret %s: no %s", pgName, k)
		}
	}
	if !strings.Contains(string(sec.Data["password"]), "CHANGE-ME") {
		t.Errorf("Secret %s: the committed password should read as a placeholder (CHANGE-ME…)", pgName)
	}
}

// TestServicesSelectPods: each Service selects exactly the pods it is for,
// on a port they serve.
func TestServicesSelectPods(t *testing.T) {
	m := build(t, "base")
	pods := m.podTemplates()
	want := map[string]string{labName: "Deployment/" + labName, pgName: "StatefulSet/" + pgName}
	wantPort := map[string]int32{labName: labPort, pgName: 5432}
	svcs := all[*corev1.Service](m)
	if len(svcs) != len(want) {
		t.Fatalf("%d Services, want %d", len(svcs), len(want))
	}
	for _, svc := range svcs {
		var selected []string
		for name, tmpl := range pods {
			if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tmpl.Labels)) {
				selected = append(selected, name)
			}
		}
		if len(selected) != 1 || selected[0] != want[svc.Name] {
			t.Errorf("Service %s selects %v, want [%s]", svc.Name, selected, want[svc.Name])
			continue
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != wantPort[svc.Name] {
			t.Errorf("Service %s ports %+v, want %d", svc.Name, svc.Spec.Ports, wantPort[svc.Name])
			continue
		}
		c := pods[selected[0]].Spec.Containers[0]
		if got := resolvePort(t, c, svc.Spec.Ports[0].TargetPort); got != wantPort[svc.Name] {
			t.Errorf("Service %s targets container port %d, want %d", svc.Name, got, wantPort[svc.Name])
		}
	}
}

// roleRules are the exact rules of each Role: what the sandbox backend
// declares its supervisor (Launcher) and workers (Backend) need, and its
// own envtest suite shows to be enough.
var roleRules = map[string][]rbacv1.PolicyRule{
	labName:    kube.LauncherRules(),
	workerName: kube.SandboxRules(),
}

// ruleSet flattens rules to group/resource → sorted verbs.
func ruleSet(rules []rbacv1.PolicyRule) map[string][]string {
	out := map[string][]string{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				out[g+"/"+res] = append(out[g+"/"+res], r.Verbs...)
			}
		}
	}
	for k := range out {
		out[k] = slices.Compact(slices.Sorted(slices.Values(out[k])))
	}
	return out
}

func TestRBAC(t *testing.T) {
	m := build(t, "base")
	for _, u := range m.objs {
		if k := u.GetKind(); k == "ClusterRole" || k == "ClusterRoleBinding" {
			t.Errorf("%s: no cluster-wide rights", id(u))
		}
	}
	roles := all[*rbacv1.Role](m)
	if len(roles) != len(roleRules) {
		t.Errorf("%d Roles, want %d", len(roles), len(roleRules))
	}
	for _, r := range roles {
		want, ok := roleRules[r.Name]
		if !ok {
			t.Errorf("Role %s: unexpected", r.Name)
			continue
		}
		for _, rule := range r.Rules {
			if len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
				t.Errorf("Role %s: rule %+v: resourceNames/nonResourceURLs unexpected", r.Name, rule)
			}
			for _, v := range rule.Verbs {
				if v == "*" || v == "escalate" || v == "bind" || v == "impersonate" || v == "update" {
					t.Errorf("Role %s: verb %q", r.Name, v)
				}
			}
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					if g == "*" || res == "*" {
						t.Errorf("Role %s: wildcard group or resource", r.Name)
					}
					if res == "secrets" && slices.ContainsFunc(rule.Verbs, func(v string) bool { return v == "get" || v == "list" || v == "watch" }) {
						t.Errorf("Role %s: reads Secrets", r.Name)
					}
				}
			}
		}
		if got, want := ruleSet(r.Rules), ruleSet(want); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Role %s rules differ from what internal/sandbox/kubernetes declares (rbac.go):\n got %v\nwant %v", r.Name, got, want)
		}
	}
	accounts := map[string]*corev1.ServiceAccount{}
	for _, sa := range all[*corev1.ServiceAccount](m) {
		accounts[sa.Name] = sa
	}
	for _, rb := range all[*rbacv1.RoleBinding](m) {
		if rb.RoleRef.Kind != "Role" || rb.RoleRef.APIGroup != rbacv1.GroupName || rb.RoleRef.Name != rb.Name {
			t.Errorf("RoleBinding %s: roleRef %+v, want the Role of the same name", rb.Name, rb.RoleRef)
		}
		if len(rb.Subjects) != 1 || rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != rb.Name || rb.Subjects[0].Namespace != rb.Namespace {
			t.Errorf("RoleBinding %s: subjects %+v, want the ServiceAccount %s/%s", rb.Name, rb.Subjects, rb.Namespace, rb.Name)
		} else if accounts[rb.Name] == nil {
			t.Errorf("RoleBinding %s: no ServiceAccount %s", rb.Name, rb.Name)
		}
	}
	// Accounts mount no token unless the pod asks: the lab's and the
	// namespace default's. Workers need theirs.
	for _, name := range []string{labName, "default"} {
		if sa := accounts[name]; sa == nil || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s: automountServiceAccountToken is not false", name)
		}
	}
}

func TestNetworkPolicies(t *testing.T) {
	m := build(t, "base")
	pods := m.podTemplates()
	labPod := pods["Deployment/"+labName].Labels
	pgPod := pods["StatefulSet/"+pgName].Labels
	tcp := corev1.ProtocolTCP

	lab := get[*networkingv1.NetworkPolicy](t, m, labName)
	if !selects(t, &lab.Spec.PodSelector, labPod) || selects(t, &lab.Spec.PodSelector, pgPod) {
		t.Errorf("NetworkPolicy %s: podSelector %v should select the lab and only it", lab.Name, lab.Spec.PodSelector)
	}
	if !slices.Equal(lab.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy %s: policyTypes %v, want [Ingress] (the lab calls model APIs, PostgreSQL, DNS)", lab.Name, lab.Spec.PolicyTypes)
	}
	want := []networkingv1.NetworkPolicyIngressRule{{
		From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr(intstr.FromInt32(labPort))}},
	}}
	if !equality.Semantic.DeepEqual(lab.Spec.Ingress, want) {
		t.Errorf("NetworkPolicy %s: ingress %+v, want only TCP %d from pods of the namespace", lab.Name, lab.Spec.Ingress, labPort)
	}

	pg := get[*networkingv1.NetworkPolicy](t, m, pgName)
	if !selects(t, &pg.Spec.PodSelector, pgPod) || selects(t, &pg.Spec.PodSelector, labPod) {
		t.Errorf("NetworkPolicy %s: podSelector %v should select PostgreSQL and only it", pg.Name, pg.Spec.PodSelector)
	}
	if !slices.Equal(pg.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) || len(pg.Spec.Egress) != 0 {
		t.Errorf("NetworkPolicy %s: policyTypes %v egress %v, want Ingress and Egress with no egress at all", pg.Name, pg.Spec.PolicyTypes, pg.Spec.Egress)
	}
	if len(pg.Spec.Ingress) != 1 || len(pg.Spec.Ingress[0].From) != 1 || len(pg.Spec.Ingress[0].Ports) != 1 {
		t.Fatalf("NetworkPolicy %s: ingress %+v, want one rule, one peer, one port", pg.Name, pg.Spec.Ingress)
	}
	peer, port := pg.Spec.Ingress[0].From[0], pg.Spec.Ingress[0].Ports[0]
	if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil ||
		!selects(t, peer.PodSelector, labPod) || selects(t, peer.PodSelector, pgPod) || selects(t, peer.PodSelector, map[string]string{"aar.dev/role": "sandbox"}) {
		t.Errorf("NetworkPolicy %s: peer %+v, want the lab's pods only", pg.Name, peer)
	}
	if port.Port == nil || port.Port.IntValue() != 5432 || deref(port.Protocol) != tcp {
		t.Errorf("NetworkPolicy %s: port %+v, want TCP 5432", pg.Name, port)
	}
}

func TestOverlays(t *testing.T) {
	base := build(t, "base")

	t.Run("dev", func(t *testing.T) {
		dev := build(t, "overlays/dev")
		if !slices.Equal(dev.ids(), base.ids()) {
			t.Errorf("objects differ from the base:\n dev  %v\n base %v", dev.ids(), base.ids())
		}
		smaller := func(what string, d, b resource.Quantity) {
			if d.Cmp(b) >= 0 {
				t.Errorf("%s: %s, not less than the base's %s", what, d.String(), b.String())
			}
		}
		dl := get[*appsv1.Deployment](t, dev, labName).Spec.Template.Spec.Containers[0].Resources
		bl := get[*appsv1.Deployment](t, base, labName).Spec.Template.Spec.Containers[0].Resources
		smaller("lab memory request", *dl.Requests.Memory(), *bl.Requests.Memory())
		smaller("lab memory limit", *dl.Limits.Memory(), *bl.Limits.Memory())
		dp := get[*appsv1.StatefulSet](t, dev, pgName)
		bp := get[*appsv1.StatefulSet](t, base, pgName)
		smaller("postgres memory request", *dp.Spec.Template.Spec.Containers[0].Resources.Requests.Memory(), *bp.Spec.Template.Spec.Containers[0].Resources.Requests.Memory())
		smaller("postgres volume", dp.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage], bp.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage])
		smaller("lab volume", get[*corev1.PersistentVolumeClaim](t, dev, "aar-lab-data").Spec.Resources.Requests[corev1.ResourceStorage],
			get[*corev1.PersistentVolumeClaim](t, base, "aar-lab-data").Spec.Resources.Requests[corev1.ResourceStorage])
		// The patch changed sizes, not what the base promises.
		if dp.Spec.VolumeClaimTemplates[0].Name != "data" || dp.Spec.Template.Spec.SecurityContext == nil || deref(dp.Spec.Template.Spec.SecurityContext.RunAsUser) != 999 {
			t.Error("the dev patch lost the PostgreSQL claim's name or its securityContext")
		}
	})

	t.Run("gpu", func(t *testing.T) {
		gpu := build(t, "overlays/gpu")
		wantIDs := append(base.ids(), "ResourceQuota/aar-gpus")
		sort.Strings(wantIDs)
		if !slices.Equal(gpu.ids(), wantIDs) {
			t.Errorf("objects:\n got %v\nwant %v", gpu.ids(), wantIDs)
		}
		cm := get[*corev1.ConfigMap](t, gpu, runConfig)
		if cm.Data[kube.EnvGPUs] != "1" || cm.Data[kube.EnvGPUResource] != "nvidia.com/gpu" {
			t.Errorf("ConfigMap %s: %v, want one nvidia.com/gpu per sandbox", runConfig, cm.Data)
		}
		bcm := get[*corev1.ConfigMap](t, base, runConfig)
		for k, v := range bcm.Data {
			if _, ok := cm.Data[k]; !ok {
				t.Errorf("ConfigMap %s: the patch dropped %s=%q", runConfig, k, v)
			}
		}
		q := get[*corev1.ResourceQuota](t, gpu, "aar-gpus")
		if n, ok := q.Spec.Hard["requests.nvidia.com/gpu"]; !ok || n.IsZero() {
			t.Errorf("ResourceQuota aar-gpus: hard %v, want requests.nvidia.com/gpu", q.Spec.Hard)
		}
		// Nothing else changes.
		for i, u := range gpu.objs {
			if u.GetKind() == "ConfigMap" || u.GetKind() == "ResourceQuota" {
				continue
			}
			for _, b := range base.objs {
				if id(b) == id(u) && string(toJSON(b)) != string(toJSON(gpu.objs[i])) {
					t.Errorf("%s differs from the base", id(u))
				}
			}
		}
	})
}

// TestRunJob checks the example campaign Job against the base it runs in.
func TestRunJob(t *testing.T) {
	base := build(t, "base")
	ex := readExample(t, "examples/run-job.yaml")
	jobs := all[*batchv1.Job](ex)
	if len(jobs) != 1 {
		t.Fatalf("%d Jobs, want 1", len(jobs))
	}
	j := jobs[0]
	if j.GenerateName == "" || j.Name != "" {
		t.Errorf("name %q generateName %q: want generateName only (one Job per campaign, kubectl create)", j.Name, j.GenerateName)
	}
	if j.Namespace != namespace {
		t.Errorf("namespace %q, want %q", j.Namespace, namespace)
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit != 0 || j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Error("want backoffLimit 0 and restartPolicy Never: a retried `aar run` starts a second campaign")
	}
	spec := j.Spec.Template.Spec
	get[*corev1.ServiceAccount](t, base, spec.ServiceAccountName)
	if spec.ServiceAccountName != labName {
		t.Errorf("serviceAccountName %q, want %q (the supervisor's)", spec.ServiceAccountName, labName)
	}
	c := spec.Containers[0]
	flags := flagValues(c.Args)
	if c.Args[0] != "run" || flags["--sandbox"] != "kubernetes" {
		t.Errorf("args %q, want run --sandbox=kubernetes …", c.Args)
	}
	svc := get[*corev1.Service](t, base, labName)
	if want := fmt.Sprintf("http://%s.%s.svc:%d", svc.Name, svc.Namespace, svc.Spec.Ports[0].Port); flags["--lab"] != want {
		t.Errorf("--lab %q, want the lab's Service %q", flags["--lab"], want)
	}
	tok := envByName(c)["AAR_TOKEN"]
	if r := tok.ValueFrom; r == nil || r.SecretKeyRef == nil || r.SecretKeyRef.Name != "aar-admin" || r.SecretKeyRef.Key != "token" || deref(r.SecretKeyRef.Optional) {
		t.Errorf("AAR_TOKEN %+v, want the required key token of Secret aar-admin", tok)
	}
	keys := false
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil && ef.SecretRef.Name == "aar-model-keys" && deref(ef.SecretRef.Optional) {
			keys = true
		}
	}
	if !keys {
		t.Error("no optional envFrom Secret aar-model-keys")
	}
	checkRefsDefined(t, base, c)
	// The reports' claim is in runs-pvc.yaml.
	pvcs := readExample(t, "examples/runs-pvc.yaml")
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			pvc := get[*corev1.PersistentVolumeClaim](t, pvcs, v.PersistentVolumeClaim.ClaimName)
			checkClaim(t, pvc.Name, pvc.Spec)
		}
	}
}

// TestImagesOverride renders the overlay deploy/README.md shows operators
// (their registry's image, their own PostgreSQL password) on top of dev.
func TestImagesOverride(t *testing.T) {
	fsys := layered{top: mapFS(map[string]string{
		"overlays/registry/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: aar
resources:
  - ../dev
images:
  - name: aar
    newName: registry.example.com:5000/aar
    newTag: v1
patches:
  - patch: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: aar-run}
      data: {AAR_KUBE_IMAGE: "registry.example.com:5000/aar:v1"}
secretGenerator:
  - name: aar-postgres
    behavior: replace
    envs: [postgres.env]
    options:
      disableNameSuffixHash: true
`,
		"overlays/registry/postgres.env": "username=aar\npassword=0123456789abcdef\ndatabase=aar\n",
	}), bottom: os.DirFS(".")}
	objs, err := render(fsys, "overlays/registry")
	if err != nil {
		t.Fatal(err)
	}
	m := decodeAll(t, "overlays/registry", objs)
	lab := get[*appsv1.Deployment](t, m, labName).Spec.Template.Spec.Containers[0].Image
	if lab != "registry.example.com:5000/aar:v1" {
		t.Errorf("lab image %q", lab)
	}
	if got := get[*corev1.ConfigMap](t, m, runConfig).Data[kube.EnvImage]; got != lab {
		t.Errorf("%s %q, the lab's image %q", kube.EnvImage, got, lab)
	}
	if got := get[*appsv1.StatefulSet](t, m, pgName).Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(got, "postgres:15") {
		t.Errorf("postgres image %q changed", got)
	}
	if got := string(get[*corev1.Secret](t, m, pgName).Data["password"]); got != "0123456789abcdef" {
		t.Errorf("password %q, want the overlay's", got)
	}
}

// flagValues maps --flag=value arguments.
func flagValues(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
			out[k] = v
		}
	}
	return out
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkRefsDefined: every $(VAR) in a container's command and args is set
// by the container (env, or envFrom a ConfigMap of m that is not
// optional): the kubelet leaves an undefined one as literal text.
func checkRefsDefined(t *testing.T, m *manifests, c corev1.Container) {
	t.Helper()
	defined := map[string]bool{}
	for _, e := range c.Env {
		defined[e.Name] = true
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil && !deref(ef.ConfigMapRef.Optional) {
			for k := range get[*corev1.ConfigMap](t, m, ef.ConfigMapRef.Name).Data {
				defined[ef.Prefix+k] = true
			}
		}
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		for _, ref := range varRef.FindAllStringSubmatch(a, -1) {
			if !defined[ref[1]] {
				t.Errorf("container %s: %q uses $(%s), which it does not define", c.Name, a, ref[1])
			}
		}
	}
}

// checkSecretRefs: every secretKeyRef into a Secret of m names a key the
// Secret has.
func checkSecretRefs(t *testing.T, m *manifests, c corev1.Container) {
	t.Helper()
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		r := e.ValueFrom.SecretKeyRef
		sec := get[*corev1.Secret](t, m, r.Name)
		if _, ok := sec.Data[r.Key]; !ok {
			t.Errorf("container %s: %s refers to key %s, which Secret %s lacks", c.Name, e.Name, r.Key, r.Name)
		}
	}
}

func checkClaim(t *testing.T, what string, spec corev1.PersistentVolumeClaimSpec) {
	t.Helper()
	if !slices.Equal(spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("%s: access modes %v, want [ReadWriteOnce]", what, spec.AccessModes)
	}
	if q := spec.Resources.Requests[corev1.ResourceStorage]; q.IsZero() {
		t.Errorf("%s: no storage request", what)
	}
}

func envByName(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Errorf("container %s: no port %q", c.Name, name)
	return 0
}

// resolvePort turns a probe's or Service's target port into a number.
func resolvePort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	return containerPort(t, c, p.StrVal)
}

func selects(t *testing.T, s *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel.Matches(labels.Set(podLabels))
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

// secretValue decodes one key of a rendered (unstructured) Secret.
func secretValue(u *unstructured.Unstructured, key string) string {
	s, _, _ := unstructured.NestedString(u.Object, "data", key)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "!" + err.Error()
	}
	return string(b)
}

// TestBackendContract checks the manifests against what the Kubernetes
// sandbox backend assumes (internal/sandbox/kubernetes): names, labels,
// ports, and that the AAR_KUBE_* settings of each kustomization pass the
// backend's own validation.
func TestBackendContract(t *testing.T) {
	d := kube.DefaultConfig()
	base := build(t, "base")
	lab := get[*appsv1.Deployment](t, base, labName)
	if namespace != kube.DefaultNamespace {
		t.Errorf("namespace %q, backend default %q", namespace, kube.DefaultNamespace)
	}
	if !labels.SelectorFromSet(d.LabPodLabels).Matches(labels.Set(lab.Spec.Template.Labels)) {
		t.Errorf("the backend's sandbox policies admit pods labelled %v, which the lab's pods (%v) are not", d.LabPodLabels, lab.Spec.Template.Labels)
	}
	c := lab.Spec.Template.Spec.Containers[0]
	if p := containerPort(t, c, "http"); p != d.LabPort {
		t.Errorf("lab container port %d, the backend's sandbox policies allow %d", p, d.LabPort)
	}
	if flags := flagValues(readExample(t, "examples/run-job.yaml").podTemplates()["Job/aar-run-"].Spec.Containers[0].Args); flags["--lab"] != d.LabURL {
		t.Errorf("the Job's --lab %q, the backend's default lab URL %q", flags["--lab"], d.LabURL)
	}
	get[*corev1.ServiceAccount](t, base, d.WorkerServiceAccount)
	keys := false
	for _, ef := range c.EnvFrom {
		keys = keys || (ef.SecretRef != nil && ef.SecretRef.Name == d.ModelSecret)
	}
	if !keys {
		t.Errorf("the lab does not read the model keys Secret %s the workers get", d.ModelSecret)
	}

	known := map[string]bool{}
	for _, k := range []string{kube.EnvNamespace, kube.EnvImage, kube.EnvImagePullPolicy, kube.EnvLabURL, kube.EnvLabLabels,
		kube.EnvLabPort, kube.EnvLabNamespace, kube.EnvCampaign, kube.EnvResearcher, kube.EnvOwnerPod, kube.EnvOwnerUID,
		kube.EnvGPUs, kube.EnvGPUResource, kube.EnvRuntimeClass} {
		known[k] = true
	}
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			m := build(t, dir)
			cm := get[*corev1.ConfigMap](t, m, runConfig)
			lc := get[*appsv1.Deployment](t, m, labName).Spec.Template.Spec.Containers[0]
			if cm.Data[kube.EnvImage] != lc.Image || cm.Data[kube.EnvImagePullPolicy] != string(lc.ImagePullPolicy) {
				t.Errorf("%s %q %s %q: want the lab's image %q and pull policy %q", kube.EnvImage, cm.Data[kube.EnvImage], kube.EnvImagePullPolicy, cm.Data[kube.EnvImagePullPolicy], lc.Image, lc.ImagePullPolicy)
			}
			for k := range known {
				t.Setenv(k, "")
			}
			t.Setenv(kube.EnvNamespace, namespace) // the Job's downward API
			for k, v := range cm.Data {
				if strings.HasPrefix(k, "AAR_KUBE_") {
					if !known[k] {
						t.Errorf("ConfigMap %s: %s is not a variable the backend reads", runConfig, k)
					}
					t.Setenv(k, v)
				}
			}
			cfg, err := kube.FromEnv()
			if err != nil {
				t.Fatalf("the backend refuses ConfigMap %s: %v", runConfig, err)
			}
			if want := cm.Data[kube.EnvGPUs]; fmt.Sprint(cfg.GPUs) != want {
				t.Errorf("the backend reads %d GPUs, the ConfigMap says %q", cfg.GPUs, want)
			}
		})
	}
}
