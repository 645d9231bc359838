package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	kube "github.com/aar-lab/aar/internal/sandbox/kubernetes"
)

// TestRunKubernetes: aar run --sandbox kubernetes against a real
// kube-apiserver and etcd (envtest) and a real lab: one worker pod per
// researcher with its token from a Secret and the in-cluster lab URL; the
// test plays the kubelet (no kubelet runs here), moving each pod through
// Pending → Running → Succeeded with the worker's summary as its
// termination message; the campaign ends and every pod, Secret and owner
// object of the campaign is removed.
func TestRunKubernetes(t *testing.T) {
	needSandbox(t)
	script, _ := filepath.Abs("../../scripts/envtest.sh")
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		if err := exec.Command(script, "--check").Run(); err != nil {
			t.Skip("no envtest binaries (kube-apiserver, etcd): run `make test-kube`, or set KUBEBUILDER_ASSETS")
		}
		out, err := exec.Command(script).Output()
		if err != nil {
			t.Fatal(err)
		}
		assets = strings.TrimSpace(string(out))
	}
	t.Setenv("KUBEBUILDER_ASSETS", assets)
	ctrllog.SetLogger(logr.Discard()) // envtest logs through it, and warns with a stack when unset
	env := &envtest.Environment{BinaryAssetsDirectory: assets, ControlPlaneStartTimeout: 2 * time.Minute}
	if _, err := env.Start(); err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	user, err := env.AddUser(envtest.User{Name: "operator", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kcFile := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kcFile, kc, 0o600)
	rc, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(rc)
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "aar"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	data := runData(t)
	bin := buildAar(t)
	_, admin, base := startLabProcess(t, bin, "--data", data, "--socket", filepath.Join(t.TempDir(), "lab.sock"))
	run := exec.Command(bin, "run", "--data", data, "--lab", base, "--kube-lab-url", "http://aar-lab.aar.svc:8420",
		"--sandbox", "kubernetes", "--kube-image", "registry.example/aar:test", "--kubeconfig", kcFile,
		"--testbed", "toy", "--researchers", "2", "--backend", "builtin", "--name", "kc", "--verify-top", "0", "--no-baselines", "--json")
	run.Env = append(os.Environ(), "AAR_TOKEN="+admin, "ANTHROPIC_API_KEY=sk-laptop-key-must-not-travel")
	var out strings.Builder
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()

	// The kubelet's part, for each worker pod as it appears.
	sel := kube.LabelCampaign + "=kc," + kube.LabelRole + "=worker"
	done := map[string]bool{}
	deadline := time.After(3 * time.Minute)
	for len(done) < 2 {
		select {
		case err := <-exited:
			t.Fatalf("aar run ended before its workers: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("worker pods: %d of 2 seen\n%s", len(done), out.String())
		case <-time.After(200 * time.Millisecond):
		}
		pods, err := cs.CoreV1().Pods("aar").List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if done[p.Name] {
				continue
			}
			done[p.Name] = true
			checkWorkerPod(t, &p)
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}}
			up, err := cs.CoreV1().Pods("aar").UpdateStatus(ctx, &p, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			up.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", Message: `{"reason":"finished on the test's kubelet"}`}}}}}
			if _, err := cs.CoreV1().Pods("aar").UpdateStatus(ctx, up, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("aar run --sandbox kubernetes: %v\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		run.Process.Kill()
		t.Fatalf("aar run did not end after its workers\n%s", out.String())
	}
	// Each worker's end, with the summary its pod left, is in the events.
	exits := 0
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, `"researcher_exited"`) && strings.Contains(line, "finished on the test's kubelet") && strings.Contains(line, `"finished"`) {
			exits++
		}
	}
	if exits != 2 {
		t.Errorf("%d of 2 workers' summaries reached the supervisor:\n%s", exits, out.String())
	}
	if strings.Contains(out.String(), "sk-laptop-key") {
		t.Error("the laptop's model key appears in the output")
	}
	// Cleanup on campaign end: nothing of the campaign is left.
	left := kube.LabelCampaign + "=kc"
	pods, _ := cs.CoreV1().Pods("aar").List(ctx, metav1.ListOptions{LabelSelector: left})
	secrets, _ := cs.CoreV1().Secrets("aar").List(ctx, metav1.ListOptions{LabelSelector: left})
	cms, _ := cs.CoreV1().ConfigMaps("aar").List(ctx, metav1.ListOptions{LabelSelector: left})
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			t.Errorf("pod %s left after the campaign", p.Name)
		}
	}
	if len(secrets.Items)+len(cms.Items) > 0 {
		t.Errorf("left after the campaign: %d secrets, %d configmaps", len(secrets.Items), len(cms.Items))
	}
}

// checkWorkerPod: a worker pod runs aar researcher against the in-cluster
// lab with its sandboxes on the cluster, its token from a Secret, no model
// key of the machine that ran aar run, and the restrictive security context.
func checkWorkerPod(t *testing.T, p *corev1.Pod) {
	t.Helper()
	c := p.Spec.Containers[0]
	args := strings.Join(append(slices.Clone(c.Command), c.Args...), " ")
	for _, want := range []string{"researcher", "--lab http://aar-lab.aar.svc:8420", "--sandbox kubernetes", "--testbed toy", "--data /var/lib/aar"} {
		if !strings.Contains(args, want) {
			t.Errorf("worker %s: %q lacks %q", p.Name, args, want)
		}
	}
	if c.Image != "registry.example/aar:test" {
		t.Errorf("worker %s image %q", p.Name, c.Image)
	}
	var tokenFromSecret bool
	for _, e := range c.Env {
		if e.Name == "AAR_TOKEN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			tokenFromSecret = true
		}
		if strings.HasPrefix(e.Value, "aar_") || strings.Contains(e.Value, "sk-laptop") {
			t.Errorf("worker %s: a secret in a literal env value (%s)", p.Name, e.Name)
		}
	}
	if !tokenFromSecret {
		t.Errorf("worker %s: AAR_TOKEN not from a Secret: %+v", p.Name, c.Env)
	}
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("worker %s security context: %+v", p.Name, sc)
	}
	if len(p.OwnerReferences) == 0 {
		t.Errorf("worker %s has no owner: the campaign cannot garbage-collect it", p.Name)
	}
}
