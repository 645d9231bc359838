package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/watch"
)

const testToken = "aar_tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"

// created is what a Create call returned, delivered once the test has
// played the kubelet.
type created struct {
	sb  sandbox.Sandbox
	err error
}

func startCreate(ctx context.Context, b *Backend, spec sandbox.Spec) chan created {
	ch := make(chan created, 1)
	go func() {
		sb, err := b.Create(ctx, spec)
		ch <- created{sb, err}
	}()
	return ch
}

func waitCreated(t *testing.T, ch chan created) created {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(60 * time.Second):
		t.Fatal("Create did not return")
	}
	return created{}
}

func sandboxSelector(id string) string { return LabelSandbox + "=" + id }

// sandboxPod waits for Create to make the sandbox's pod, failing at once
// should Create return first.
func sandboxPod(t *testing.T, ns, id string, ch chan created) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, "pod of sandbox "+id, func() bool {
		select {
		case c := <-ch:
			t.Fatalf("Create returned before its pod ran: %v", c.err)
		default:
		}
		l, err := clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: sandboxSelector(id)})
		if err != nil || len(l.Items) == 0 {
			return false
		}
		pod = &l.Items[0]
		return true
	})
	return pod
}

// TestCreateMakesTheObjects checks every object Create makes against the
// promises (policy first, nothing outward, read-only /data and /shared,
// no privilege, limits), then Destroy, twice.
func TestCreateMakesTheObjects(t *testing.T) {
	needCluster(t)
	ns := testNamespace(t)
	cfg := testConfig(ns)
	cfg.Campaign = "camp1"
	cfg.GPUs = 2
	cfg.RuntimeClassName = "gvisor"
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: "runsc"}
	if _, err := clientset.NodeV1().RuntimeClasses().Create(context.Background(), rc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	owner := &metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: "worker-pod", UID: types.UID("0b7c4e2a-1111-2222-3333-444455556666")}
	cfg.Owner = owner
	b, err := NewBackend(cfg, cluster, clientset)
	if err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	lim := sandbox.Limits{MemoryBytes: 3 << 30, CPUShares: 2048, WorkspaceBytes: 5 << 30, TmpBytes: 256 << 20, Lifetime: 2 * time.Hour}
	// No spec.Data: uploading it needs exec (a kubelet); see
	// TestCreateWithDataNeedsExec.
	spec := sandbox.Spec{ID: "camp1-alice-0a1b2c3d", Shared: shared, Limits: lim}

	// Watch both kinds from now on to see which comes first.
	pw, err := clientset.CoreV1().Pods(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Stop()
	nw, err := clientset.NetworkingV1().NetworkPolicies(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Stop()

	ch := startCreate(context.Background(), b, spec)
	pod := sandboxPod(t, ns, spec.ID, ch)
	kubelet(t, ns, pod.Name, running(ContainerSandbox, ContainerFiles))
	c := waitCreated(t, ch)
	if c.err != nil {
		t.Fatal(c.err)
	}
	sb := c.sb
	if sb.ID() != spec.ID {
		t.Fatalf("ID %q", sb.ID())
	}

	// The policy existed before the pod: its creation revision is lower
	// (etcd revisions order every write of the cluster).
	added := func(w watch.Interface) int64 {
		for ev := range w.ResultChan() {
			if ev.Type == watch.Added {
				var m metav1.Object
				switch o := ev.Object.(type) {
				case *corev1.Pod:
					m = o
				case *networkingv1.NetworkPolicy:
					m = o
				}
				rv, _ := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
				return rv
			}
		}
		return -1
	}
	if prv, podrv := added(nw), added(pw); prv <= 0 || podrv <= 0 || prv >= podrv {
		t.Fatalf("network policy created at revision %d, pod at %d: want the policy first", prv, podrv)
	}

	name := sandboxName(spec.ID)
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		t.Fatalf("name %q: %v", name, msgs)
	}
	wantLabels := map[string]string{LabelManagedBy: "aar", LabelCampaign: "camp1", LabelResearcher: "alice", LabelSandbox: spec.ID, LabelRole: RoleSandbox}
	podRef := metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: name}

	// NetworkPolicy: selects the pod, no ingress, no egress at all.
	np, err := clientset.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkMeta(t, "network policy", np.ObjectMeta, wantLabels, owner, &podRef)
	if got := np.Spec.PodSelector.MatchLabels; got[LabelSandbox] != spec.ID || got[LabelRole] != RoleSandbox {
		t.Errorf("policy selects %v", got)
	}
	if !reflect.DeepEqual(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("policy types %v", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 0 || len(np.Spec.Egress) != 0 {
		t.Errorf("ingress %v egress %v: want none", np.Spec.Ingress, np.Spec.Egress)
	}

	// Secret: present, nothing in it (no lab).
	sec, err := clientset.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkMeta(t, "secret", sec.ObjectMeta, wantLabels, owner, &podRef)
	if len(sec.Data) != 0 {
		t.Errorf("secret holds %v, want nothing", keys(sec.Data))
	}

	// Pod.
	p, err := clientset.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkMeta(t, "pod", p.ObjectMeta, wantLabels, owner, nil)
	s := p.Spec
	if s.RestartPolicy != corev1.RestartPolicyNever || deref(s.ActiveDeadlineSeconds) != 7200 || deref(s.AutomountServiceAccountToken) || deref(s.EnableServiceLinks) ||
		s.HostNetwork || s.HostPID || s.HostIPC || deref(s.ShareProcessNamespace) || deref(s.RuntimeClassName) != "gvisor" {
		t.Errorf("pod spec: restart %s deadline %v automount %v links %v host %v/%v/%v runtime %v", s.RestartPolicy, s.ActiveDeadlineSeconds,
			s.AutomountServiceAccountToken, s.EnableServiceLinks, s.HostNetwork, s.HostPID, s.HostIPC, s.RuntimeClassName)
	}
	psc := s.SecurityContext
	if !deref(psc.RunAsNonRoot) || deref(psc.RunAsUser) != 1000 || deref(psc.RunAsGroup) != 1000 || deref(psc.FSGroup) != 1000 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", psc)
	}
	if len(s.Containers) != 2 || s.Containers[0].Name != ContainerSandbox || s.Containers[1].Name != ContainerFiles {
		t.Fatalf("containers %v", s.Containers)
	}
	box, files := s.Containers[0], s.Containers[1]
	checkContainerSecurity(t, box, 1000)
	checkContainerSecurity(t, files, 2000)
	if box.Command[0] != "sleep" || box.Command[1] != "7200" || box.Image != cfg.Image || files.Command[0] != "sleep" {
		t.Errorf("commands %q %q image %s", box.Command, files.Command, box.Image)
	}
	want := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("2"),
		corev1.ResourceMemory:           resource.MustParse("3Gi"),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(5<<30+ephemeralSlack, resource.BinarySI),
		"nvidia.com/gpu":                resource.MustParse("2"),
	}
	checkResources(t, "sandbox requests", box.Resources.Requests, want)
	checkResources(t, "sandbox limits", box.Resources.Limits, want)
	if !equalQuantity(files.Resources.Requests.Cpu(), files.Resources.Limits.Cpu()) || !equalQuantity(files.Resources.Requests.Memory(), files.Resources.Limits.Memory()) {
		t.Errorf("files container: requests %v limits %v", files.Resources.Requests, files.Resources.Limits)
	}
	if _, ok := files.Resources.Limits["nvidia.com/gpu"]; ok {
		t.Error("the files container asks for GPUs")
	}
	mounts := func(c corev1.Container) map[string]string {
		m := map[string]string{}
		for _, vm := range c.VolumeMounts {
			m[vm.MountPath] = vm.Name + map[bool]string{true: ":ro", false: ":rw"}[vm.ReadOnly]
		}
		return m
	}
	if got, want := mounts(box), map[string]string{"/workspace": "workspace:rw", "/tmp": "tmp:rw", "/shared": "shared:ro"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sandbox mounts %v, want %v", got, want)
	}
	if got, want := mounts(files), map[string]string{"/shared": "shared:rw", "/tmp": "files-tmp:rw"}; !reflect.DeepEqual(got, want) {
		t.Errorf("files mounts %v, want %v", got, want)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range s.Volumes {
		vols[v.Name] = v
	}
	if v := vols["workspace"].EmptyDir; v == nil || v.Medium != "" || v.SizeLimit.Value() != 5<<30 {
		t.Errorf("workspace volume %+v", v)
	}
	if v := vols["tmp"].EmptyDir; v == nil || v.Medium != corev1.StorageMediumMemory || v.SizeLimit.Value() != 256<<20 {
		t.Errorf("tmp volume %+v", v)
	}
	if v := vols["shared"].EmptyDir; v == nil || v.SizeLimit.Value() != cfg.SharedBytes {
		t.Errorf("shared volume %+v", v)
	}
	for _, v := range s.Volumes {
		if v.EmptyDir == nil {
			t.Errorf("volume %s is not an emptyDir: %+v", v.Name, v.VolumeSource)
		}
	}
	env := envMap(box.Env)
	if !reflect.DeepEqual(env, map[string]string{"PATH": sandboxPath, "HOME": "/workspace", "LANG": "C.UTF-8", "TMPDIR": "/tmp"}) {
		t.Errorf("sandbox env %v: want no lab", env)
	}
	if u := sb.(interface{ LabURL() string }).LabURL(); u != "" {
		t.Errorf("LabURL() = %q for a sandbox without the lab", u)
	}
	if ws := sb.Warnings(); len(ws) == 0 || !strings.Contains(strings.Join(ws, "\n"), "process limit") {
		t.Errorf("warnings %q", ws)
	}

	// WriteFile and ReadFile refuse paths outside /workspace before any
	// exec.
	if err := sb.WriteFile("../etc/passwd", nil); err == nil {
		t.Error("WriteFile ../etc/passwd: no error")
	}
	if _, err := sb.ReadFile("/etc/passwd"); err == nil {
		t.Error("ReadFile /etc/passwd: no error")
	}

	// Destroy removes all three, and again is no error.
	if err := sb.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkGone(t, ns, name)
	if err := sb.Destroy(context.Background()); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	if _, err := sb.Exec(context.Background(), sandbox.ExecRequest{Argv: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "destroyed") {
		t.Fatalf("Exec after Destroy: %v", err)
	}
}

// TestCreateWithLab: a sandbox that needs the lab (agent-cli) may reach
// the lab's pods on their port and cluster DNS, nothing else, and reads
// its token from the Secret; the token is nowhere in the pod.
func TestCreateWithLab(t *testing.T) {
	needCluster(t)
	ns := testNamespace(t)
	cfg := testConfig(ns)
	cfg.LabURL = "http://aar-lab.aar.svc:8420"
	cfg.LabNamespace = "aar"
	cfg.LabPort = 8421
	cfg.Token = testToken
	b, err := NewBackend(cfg, cluster, clientset)
	if err != nil {
		t.Fatal(err)
	}
	spec := sandbox.Spec{ID: "bob-12345678", LabSocket: "/run/aar/lab.sock"}
	ch := startCreate(context.Background(), b, spec)
	pod := sandboxPod(t, ns, spec.ID, ch)
	kubelet(t, ns, pod.Name, running(ContainerSandbox))
	c := waitCreated(t, ch)
	if c.err != nil {
		t.Fatal(c.err)
	}
	defer c.sb.Destroy(context.Background())

	np, err := clientset.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	port := func(p corev1.Protocol, n int32) networkingv1.NetworkPolicyPort {
		return networkingv1.NetworkPolicyPort{Protocol: &p, Port: ptrTo(intstr.FromInt32(n))}
	}
	wantEgress := []networkingv1.NetworkPolicyEgressRule{
		{
			To: []networkingv1.NetworkPolicyPeer{{
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "aar-lab"}},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "aar"}},
			}},
			Ports: []networkingv1.NetworkPolicyPort{port(tcp, 8421)},
		},
		{
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
			}},
			Ports: []networkingv1.NetworkPolicyPort{port(udp, 53), port(tcp, 53)},
		},
	}
	if !reflect.DeepEqual(np.Spec.Egress, wantEgress) {
		got, _ := json.Marshal(np.Spec.Egress)
		want, _ := json.Marshal(wantEgress)
		t.Errorf("egress\n got %s\nwant %s", got, want)
	}
	if len(np.Spec.Ingress) != 0 || len(np.Spec.PolicyTypes) != 2 {
		t.Errorf("ingress %v types %v", np.Spec.Ingress, np.Spec.PolicyTypes)
	}
	sec, err := clientset.CoreV1().Secrets(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(sec.Data[TokenKey]) != testToken {
		t.Errorf("secret holds %v, want the token under %s", keys(sec.Data), TokenKey)
	}
	p, err := clientset.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tok *corev1.EnvVar
	for i, e := range p.Spec.Containers[0].Env {
		if e.Name == TokenKey {
			tok = &p.Spec.Containers[0].Env[i]
		}
	}
	if tok == nil || tok.Value != "" || tok.ValueFrom == nil || tok.ValueFrom.SecretKeyRef == nil ||
		tok.ValueFrom.SecretKeyRef.Name != pod.Name || tok.ValueFrom.SecretKeyRef.Key != TokenKey {
		t.Errorf("AAR_TOKEN %+v: want a secretKeyRef to %s/%s", tok, pod.Name, TokenKey)
	}
	if env := envMap(p.Spec.Containers[0].Env); env["AAR_LAB"] != cfg.LabURL {
		t.Errorf("AAR_LAB %q", env["AAR_LAB"])
	}
	noToken(t, p)
	if u := c.sb.(interface{ LabURL() string }).LabURL(); u != cfg.LabURL {
		t.Errorf("LabURL() = %q", u)
	}
	if len(p.Spec.Containers) != 1 {
		t.Errorf("%d containers: no /data or /shared, no files container", len(p.Spec.Containers))
	}
}

// TestCreateFailsFast: Create gives up at once, naming the reason, when
// the pod cannot run, and leaves nothing behind.
func TestCreateFailsFast(t *testing.T) {
	needCluster(t)
	for _, tc := range []struct {
		name string
		set  func(*corev1.PodStatus)
		want string
	}{
		{"image pull", func(s *corev1.PodStatus) {
			s.Phase = corev1.PodPending
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerSandbox, Image: "registry.example/aar:test",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "pull access denied"}}}}
		}, "ErrImagePull (pull access denied)"},
		{"backoff", func(s *corev1.PodStatus) {
			s.Phase = corev1.PodPending
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerSandbox, Image: "registry.example/aar:test",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}
		}, "ImagePullBackOff"},
		{"unschedulable", func(s *corev1.PodStatus) {
			s.Phase = corev1.PodPending
			s.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
				Message: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}}
		}, "Insufficient nvidia.com/gpu"},
		{"failed", func(s *corev1.PodStatus) {
			s.Phase = corev1.PodFailed
			s.Reason, s.Message = "Evicted", "The node was low on resource: memory."
		}, "Evicted"},
		{"container ended", func(s *corev1.PodStatus) {
			running(ContainerSandbox)(s)
			s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 127, Reason: "Error"}}
		}, "exit code 127"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testNamespace(t)
			b, err := NewBackend(testConfig(ns), cluster, clientset)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			ch := startCreate(ctx, b, sandbox.Spec{ID: "carol-0f0f0f0f"})
			pod := sandboxPod(t, ns, "carol-0f0f0f0f", ch)
			kubelet(t, ns, pod.Name, tc.set)
			c := waitCreated(t, ch)
			if c.err == nil || !strings.Contains(c.err.Error(), tc.want) {
				t.Fatalf("Create: %v; want an error naming %q", c.err, tc.want)
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("took %s to fail", time.Since(start))
			}
			checkGone(t, ns, pod.Name)
		})
	}

	t.Run("deadline", func(t *testing.T) {
		ns := testNamespace(t)
		b, err := NewBackend(testConfig(ns), cluster, clientset)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = b.Create(ctx, sandbox.Spec{ID: "dave-00000000"})
		if err == nil || !strings.Contains(err.Error(), "not running") || !strings.Contains(err.Error(), "phase Pending") {
			t.Fatalf("Create: %v; want a deadline error with the last phase", err)
		}
		checkGone(t, ns, sandboxName("dave-00000000"))
	})

	t.Run("deleted", func(t *testing.T) {
		ns := testNamespace(t)
		b, err := NewBackend(testConfig(ns), cluster, clientset)
		if err != nil {
			t.Fatal(err)
		}
		ch := startCreate(context.Background(), b, sandbox.Spec{ID: "erin-00000000"})
		pod := sandboxPod(t, ns, "erin-00000000", ch)
		if err := clientset.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		c := waitCreated(t, ch)
		if c.err == nil || !strings.Contains(c.err.Error(), "deleted") {
			t.Fatalf("Create: %v", c.err)
		}
		checkGone(t, ns, pod.Name)
	})
}

func TestCreateRefuses(t *testing.T) {
	needCluster(t)
	ns := testNamespace(t)
	b, err := NewBackend(testConfig(ns), cluster, clientset)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec sandbox.Spec
		want string
	}{
		{sandbox.Spec{ID: "Bad ID"}, "sandbox id"},
		{sandbox.Spec{ID: "ok-id", LabSocket: "/x"}, "Token"},
		{sandbox.Spec{ID: "ok-id", Data: filepath.Join(t.TempDir(), "missing")}, "data"},
	} {
		if _, err := b.Create(context.Background(), tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create(%+v): %v, want an error naming %s", tc.spec, err, tc.want)
		}
	}
	l, err := clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(l.Items) != 0 {
		t.Fatalf("pods left: %v %v", l, err)
	}
}

// TestCreateWithDataNeedsExec: copying /data needs exec, which envtest
// cannot serve (no kubelet): Create fails with the exec error and removes
// what it made. On a cluster the copy runs here.
func TestCreateWithDataNeedsExec(t *testing.T) {
	needCluster(t)
	ns := testNamespace(t)
	b, err := NewBackend(testConfig(ns), cluster, clientset)
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "train.jsonl"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch := startCreate(ctx, b, sandbox.Spec{ID: "frank-00000000", Data: data})
	pod := sandboxPod(t, ns, "frank-00000000", ch)
	if v := volumeByName(pod, "data"); v == nil || v.EmptyDir.SizeLimit.Value() < 1000 {
		t.Errorf("data volume %+v", v)
	}
	kubelet(t, ns, pod.Name, running(ContainerSandbox, ContainerFiles))
	c := waitCreated(t, ch)
	if c.err == nil || !strings.Contains(c.err.Error(), "copy") {
		t.Fatalf("Create: %v; want the copy to fail without a kubelet", c.err)
	}
	checkGone(t, ns, pod.Name)
}

func volumeByName(p *corev1.Pod, name string) *corev1.Volume {
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].Name == name {
			return &p.Spec.Volumes[i]
		}
	}
	return nil
}

func checkGone(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "objects of "+name+" deleted", func() bool {
		_, e1 := clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		_, e2 := clientset.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
		_, e3 := clientset.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(e1) && apierrors.IsNotFound(e2) && apierrors.IsNotFound(e3)
	})
}

func checkMeta(t *testing.T, what string, m metav1.ObjectMeta, labels map[string]string, owner *metav1.OwnerReference, also *metav1.OwnerReference) {
	t.Helper()
	if !reflect.DeepEqual(m.Labels, labels) {
		t.Errorf("%s labels %v, want %v", what, m.Labels, labels)
	}
	want := 1
	if also != nil {
		want = 2
	}
	if len(m.OwnerReferences) != want || m.OwnerReferences[0].UID != owner.UID || m.OwnerReferences[0].Kind != owner.Kind || m.OwnerReferences[0].Name != owner.Name {
		t.Errorf("%s owners %+v, want %+v first", what, m.OwnerReferences, owner)
	} else if also != nil && (m.OwnerReferences[1].Kind != also.Kind || m.OwnerReferences[1].Name != also.Name || m.OwnerReferences[1].UID == "") {
		t.Errorf("%s owners %+v, want the sandbox pod too", what, m.OwnerReferences)
	}
}

func checkContainerSecurity(t *testing.T, c corev1.Container, uid int64) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || !deref(sc.ReadOnlyRootFilesystem) || deref(sc.AllowPrivilegeEscalation) || sc.AllowPrivilegeEscalation == nil ||
		sc.Privileged == nil || deref(sc.Privileged) || deref(sc.RunAsUser) != uid || !deref(sc.RunAsNonRoot) ||
		sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container %s security context %+v", c.Name, sc)
	}
}

func checkResources(t *testing.T, what string, got, want corev1.ResourceList) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s %v, want %v", what, got, want)
		return
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || g.Cmp(w) != 0 {
			t.Errorf("%s %s = %s, want %s", what, k, g.String(), w.String())
		}
	}
}

func equalQuantity(a, b *resource.Quantity) bool { return a.Cmp(*b) == 0 }

func envMap(env []corev1.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		if e.ValueFrom == nil {
			m[e.Name] = e.Value
		}
	}
	return m
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptrTo[T any](v T) *T { return &v }

// noToken fails when the token appears anywhere in the pod as stored.
func noToken(t *testing.T, p *corev1.Pod) {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), testToken) {
		t.Fatalf("the token appears in pod %s", p.Name)
	}
	if strings.Contains(fmt.Sprint(p.Spec), testToken) {
		t.Fatal("token in spec")
	}
}
