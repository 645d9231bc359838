package kubernetes

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aar-lab/aar/internal/launch"

	"github.com/aar-lab/aar/internal/sandbox"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func workerSpec(camp, researcher string) launch.Spec {
	return launch.Spec{Campaign: camp, Researcher: researcher, Token: testToken,
		Args: []string{"researcher", "--lab", "http://aar-lab.aar.svc:8420", "--name", researcher, "--data", DefaultWorkerDataDir},
		Env:  []string{"ANTHROPIC_API_KEY=sk-laptop-key", "AAR_EXTRA=extra-value"}}
}

// launched is a worker and its pod.
func launchWorker(t *testing.T, l *Launcher, spec launch.Spec, log *syncBuffer) (launch.Worker, *corev1.Pod) {
	t.Helper()
	w, err := l.Launch(context.Background(), spec, log)
	if err != nil {
		t.Fatal(err)
	}
	d := w.Describe()
	name, _ := d["pod"].(string)
	if d["namespace"] != l.cfg.Namespace || name == "" {
		t.Fatalf("Describe %v", d)
	}
	p, err := clientset.CoreV1().Pods(l.cfg.Namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return w, p
}

type waited struct {
	summary []byte
	err     error
}

func startWait(w launch.Worker) chan waited {
	ch := make(chan waited, 1)
	go func() {
		s, err := w.Wait()
		ch <- waited{s, err}
	}()
	return ch
}

func waitResult(t *testing.T, ch chan waited) waited {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("Wait did not return")
	}
	return waited{}
}

func TestLaunchMakesTheWorker(t *testing.T) {
	needCluster(t)
	ns := testNamespace(t)
	cfg := testConfig(ns)
	cfg.GPUs = 1
	cfg.WorkerResources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}
	l, err := NewLauncher(cfg, clientset)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Cleanup(context.Background())
	w, p := launchWorker(t, l, workerSpec("camp-x", "Alice_The.Great"), &syncBuffer{})
	defer w.Kill()

	if msgs := validation.IsDNS1123Label(p.Name); len(msgs) > 0 {
		t.Errorf("pod name %q: %v", p.Name, msgs)
	}
	cm, err := clientset.CoreV1().ConfigMaps(ns).Get(context.Background(), campaignOwnerName("camp-x"), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("campaign owner: %v", err)
	}
	if cm.Labels[LabelCampaign] != "camp-x" || cm.Labels[LabelRole] != RoleCampaign {
		t.Errorf("owner labels %v", cm.Labels)
	}
	wantOwner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID}}
	wantLabels := map[string]string{LabelManagedBy: "aar", LabelCampaign: "camp-x", LabelResearcher: "Alice_The.Great", LabelRole: RoleWorker}
	if !reflect.DeepEqual(p.OwnerReferences, wantOwner) || !reflect.DeepEqual(p.Labels, wantLabels) {
		t.Errorf("pod owners %+v labels %v", p.OwnerReferences, p.Labels)
	}
	sec, err := clientset.CoreV1().Secrets(ns).Get(context.Background(), p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sec.OwnerReferences, wantOwner) || string(sec.Data[TokenKey]) != testToken || string(sec.Data["AAR_EXTRA"]) != "extra-value" {
		t.Errorf("secret owners %+v keys %v", sec.OwnerReferences, keys(sec.Data))
	}
	if _, ok := sec.Data["ANTHROPIC_API_KEY"]; ok {
		t.Error("a model key from the launcher's environment went into the cluster")
	}

	s := p.Spec
	if s.ServiceAccountName != DefaultWorkerServiceAccount || !deref(s.AutomountServiceAccountToken) || s.RestartPolicy != corev1.RestartPolicyNever || deref(s.EnableServiceLinks) {
		t.Errorf("pod spec: sa %q automount %v restart %s", s.ServiceAccountName, s.AutomountServiceAccountToken, s.RestartPolicy)
	}
	psc := s.SecurityContext
	if !deref(psc.RunAsNonRoot) || deref(psc.RunAsUser) != 1000 || deref(psc.FSGroup) != 1000 || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security %+v", psc)
	}
	c := s.Containers[0]
	checkContainerSecurity(t, c, 1000)
	if c.Command[0] != "/usr/local/bin/aar" || !slices.Equal(c.Args[len(c.Args)-2:], []string{"--sandbox", "kubernetes"}) || c.Args[0] != "researcher" {
		t.Errorf("command %q args %q", c.Command, c.Args)
	}
	if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError || c.TerminationMessagePath != "/dev/termination-log" {
		t.Errorf("termination message %s %s", c.TerminationMessagePath, c.TerminationMessagePolicy)
	}
	if !c.Resources.Requests.Cpu().Equal(resource.MustParse("500m")) {
		t.Errorf("resources %v", c.Resources)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if mounts[DefaultWorkerDataDir] != "data" || mounts["/tmp"] != "tmp" {
		t.Errorf("mounts %v", mounts)
	}
	secretRefs := map[string]string{}
	fieldRefs := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			opt := ""
			if deref(r.Optional) {
				opt = "?"
			}
			secretRefs[e.Name] = r.Name + "/" + r.Key + opt
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			fieldRefs[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	wantSecrets := map[string]string{TokenKey: p.Name + "/AAR_TOKEN", "AAR_EXTRA": p.Name + "/AAR_EXTRA"}
	for _, k := range launch.ModelEnv {
		wantSecrets[k] = DefaultModelSecret + "/" + k + "?"
	}
	if !reflect.DeepEqual(secretRefs, wantSecrets) {
		t.Errorf("secret env %v, want %v", secretRefs, wantSecrets)
	}
	if !reflect.DeepEqual(fieldRefs, map[string]string{EnvOwnerPod: "metadata.name", EnvOwnerUID: "metadata.uid"}) {
		t.Errorf("downward API env %v", fieldRefs)
	}
	env := envMap(c.Env)
	if env["AAR_TERMINATION_LOG"] != "/dev/termination-log" || env[EnvNamespace] != ns || env[EnvImage] != cfg.Image || env[EnvCampaign] != "camp-x" || env[EnvGPUs] != "1" {
		t.Errorf("env %v", env)
	}
	noToken(t, p)
	if strings.Contains(p.String(), "sk-laptop-key") {
		t.Error("a model key appears in the pod")
	}

	// What a worker's own FromEnv makes of that environment.
	env[EnvOwnerPod], env[EnvOwnerUID] = p.Name, string(p.UID)
	got, err := fromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if got.Namespace != ns || got.Image != cfg.Image || got.LabURL != cfg.LabURL || got.Campaign != "camp-x" || got.Researcher != "Alice_The.Great" ||
		got.GPUs != 1 || got.LabPort != cfg.LabPort || !reflect.DeepEqual(got.LabPodLabels, cfg.LabPodLabels) ||
		got.Owner == nil || got.Owner.Name != p.Name || got.Owner.UID != p.UID || got.Owner.Kind != "Pod" {
		t.Errorf("FromEnv in the worker: %+v", got)
	}
}

func TestLaunchProxiedGetsNoModelKeys(t *testing.T) {
	needCluster(t)
	ns := testNamespace(t)
	l, err := NewLauncher(testConfig(ns), clientset)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Cleanup(context.Background())
	spec := workerSpec("camp-p", "agent")
	spec.Proxied = true
	spec.Env = nil
	w, p := launchWorker(t, l, spec, &syncBuffer{})
	defer w.Kill()
	for _, e := range p.Spec.Containers[0].Env {
		if slices.Contains(launch.ModelEnv, e.Name) {
			t.Errorf("proxied worker gets %s", e.Name)
		}
	}
}

func TestWorkerWait(t *testing.T) {
	needCluster(t)
	ns := testNamespace(t)
	l, err := NewLauncher(testConfig(ns), clientset)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Cleanup(context.Background())

	t.Run("succeeded", func(t *testing.T) {
		log := &syncBuffer{}
		w, p := launchWorker(t, l, workerSpec("camp-w", "ok"), log)
		ch := startWait(w)
		kubelet(t, ns, p.Name, running(ContainerWorker))
		summary := `{"reason":"the researcher finished","steps":12}`
		kubelet(t, ns, p.Name, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodSucceeded
			s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", Message: summary}}
		})
		r := waitResult(t, ch)
		if r.err != nil || string(r.summary) != summary {
			t.Fatalf("Wait = %q, %v; want the termination message and nil", r.summary, r.err)
		}
		// Stop and Kill after the end leave the pod (and its logs).
		w.Stop()
		w.Kill()
		if _, err := clientset.CoreV1().Pods(ns).Get(context.Background(), p.Name, metav1.GetOptions{}); err != nil {
			t.Fatalf("pod gone after Stop on an ended worker: %v", err)
		}
	})

	t.Run("failed", func(t *testing.T) {
		w, p := launchWorker(t, l, workerSpec("camp-w", "bad"), &syncBuffer{})
		ch := startWait(w)
		kubelet(t, ns, p.Name, running(ContainerWorker))
		kubelet(t, ns, p.Name, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodFailed
			s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error", Message: "lab: 401 unauthorized\n"}}
		})
		r := waitResult(t, ch)
		if r.err == nil || !strings.Contains(r.err.Error(), "exit code 3") || !strings.Contains(r.err.Error(), "Error") {
			t.Fatalf("Wait error %v; want the reason and exit code", r.err)
		}
		if string(r.summary) != "lab: 401 unauthorized\n" {
			t.Fatalf("summary %q", r.summary)
		}
	})

	t.Run("oom", func(t *testing.T) {
		w, p := launchWorker(t, l, workerSpec("camp-w", "oom"), &syncBuffer{})
		ch := startWait(w)
		kubelet(t, ns, p.Name, func(s *corev1.PodStatus) {
			running(ContainerWorker)(s)
			s.Phase = corev1.PodFailed
			s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}
		})
		r := waitResult(t, ch)
		if r.err == nil || !strings.Contains(r.err.Error(), "OOMKilled, exit code 137") {
			t.Fatalf("Wait error %v", r.err)
		}
	})

	t.Run("image pull", func(t *testing.T) {
		log := &syncBuffer{}
		w, p := launchWorker(t, l, workerSpec("camp-w", "pull"), log)
		ch := startWait(w)
		kubelet(t, ns, p.Name, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodPending
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: ContainerWorker, Image: "registry.example/aar:test",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
		})
		r := waitResult(t, ch)
		if r.err == nil || !strings.Contains(r.err.Error(), "ImagePullBackOff") {
			t.Fatalf("Wait error %v", r.err)
		}
		eventually(t, "the stuck pod deleted", func() bool {
			_, err := clientset.CoreV1().Pods(ns).Get(context.Background(), p.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
	})

	t.Run("unschedulable is noted", func(t *testing.T) {
		log := &syncBuffer{}
		w, p := launchWorker(t, l, workerSpec("camp-w", "pending"), log)
		ch := startWait(w)
		kubelet(t, ns, p.Name, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodPending
			s.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available"}}
		})
		eventually(t, "a note in the log", func() bool { return strings.Contains(log.String(), "0/1 nodes are available") })
		select {
		case r := <-ch:
			t.Fatalf("Wait returned for a pending pod: %v", r.err)
		default:
		}
		w.Kill()
		if r := waitResult(t, ch); r.err == nil {
			t.Fatal("Wait after Kill: no error")
		}
	})

	for _, stop := range []string{"Stop", "Kill"} {
		t.Run(stop, func(t *testing.T) {
			w, p := launchWorker(t, l, workerSpec("camp-w", strings.ToLower(stop)), &syncBuffer{})
			ch := startWait(w)
			kubelet(t, ns, p.Name, running(ContainerWorker))
			if stop == "Stop" {
				w.Stop()
			} else {
				w.Kill()
			}
			eventually(t, "pod deleted", func() bool {
				_, err := clientset.CoreV1().Pods(ns).Get(context.Background(), p.Name, metav1.GetOptions{})
				return apierrors.IsNotFound(err)
			})
			r := waitResult(t, ch)
			if r.err == nil || !strings.Contains(r.err.Error(), "deleted") {
				t.Fatalf("Wait error %v", r.err)
			}
		})
	}
}

// TestCleanup: cleaning up one campaign removes its workers, their
// Secrets, its sandboxes (pods, policies, Secrets) and its owner, and
// nothing of another campaign in the same namespace.
func TestCleanup(t *testing.T) {
	needCluster(t)
	ns := testNamespace(t)
	objects := func(camp string) int {
		sel := metav1.ListOptions{LabelSelector: LabelCampaign + "=" + camp}
		ctx := context.Background()
		pods, _ := clientset.CoreV1().Pods(ns).List(ctx, sel)
		secs, _ := clientset.CoreV1().Secrets(ns).List(ctx, sel)
		nps, _ := clientset.NetworkingV1().NetworkPolicies(ns).List(ctx, sel)
		cms, _ := clientset.CoreV1().ConfigMaps(ns).List(ctx, sel)
		return len(pods.Items) + len(secs.Items) + len(nps.Items) + len(cms.Items)
	}
	var launchers []*Launcher
	for _, camp := range []string{"camp-a", "camp-b"} {
		l, err := NewLauncher(testConfig(ns), clientset)
		if err != nil {
			t.Fatal(err)
		}
		launchers = append(launchers, l)
		for _, r := range []string{"r1", "r2"} {
			launchWorker(t, l, workerSpec(camp, r), &syncBuffer{})
		}
		// A sandbox one of its workers made.
		cfg := testConfig(ns)
		cfg.Campaign = camp
		b, err := NewBackend(cfg, cluster, clientset)
		if err != nil {
			t.Fatal(err)
		}
		id := camp + "-r1-00000000"
		ch := startCreate(context.Background(), b, sandbox.Spec{ID: id, Shared: t.TempDir()})
		pod := sandboxPod(t, ns, id, ch)
		kubelet(t, ns, pod.Name, running(ContainerSandbox, ContainerFiles))
		if c := waitCreated(t, ch); c.err != nil {
			t.Fatal(c.err)
		}
	}
	// 2 worker pods + 2 secrets + owner, sandbox pod + policy + secret.
	if a, b := objects("camp-a"), objects("camp-b"); a != 8 || b != 8 {
		t.Fatalf("objects before: camp-a %d camp-b %d, want 8 each", a, b)
	}
	if err := launchers[0].Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "camp-a removed", func() bool { return objects("camp-a") == 0 })
	if b := objects("camp-b"); b != 8 {
		t.Fatalf("camp-b has %d objects after camp-a's cleanup, want 8", b)
	}
	if err := launchers[1].Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "camp-b removed", func() bool { return objects("camp-b") == 0 })
	// Again: nothing to do, no error.
	if err := launchers[1].Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLaunchRefuses(t *testing.T) {
	needCluster(t)
	l, err := NewLauncher(testConfig(testNamespace(t)), clientset)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Cleanup(context.Background())
	spec := workerSpec("", "x")
	if _, err := l.Launch(context.Background(), spec, &syncBuffer{}); err == nil || !strings.Contains(err.Error(), "campaign") {
		t.Fatalf("no campaign: %v", err)
	}
	spec = workerSpec("c", "x")
	spec.Token = ""
	if _, err := l.Launch(context.Background(), spec, &syncBuffer{}); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("no token: %v", err)
	}
}
