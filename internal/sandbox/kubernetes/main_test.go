package kubernetes

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// One kube-apiserver and etcd for the package's tests (envtest): a real
// API server, with RBAC, but no kubelet, scheduler, controllers or garbage
// collector. Tests play the kubelet by writing pod status.
var (
	cluster     *rest.Config
	clientset   kubernetes.Interface
	clusterSkip string // why there is no cluster
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	assets, why := envtestAssets()
	if assets == "" {
		clusterSkip = why
		return m.Run()
	}
	// envtest prefers KUBEBUILDER_ASSETS whenever it is set, even empty.
	os.Setenv("KUBEBUILDER_ASSETS", assets)
	ctrllog.SetLogger(logr.Discard()) // envtest logs through it, and warns with a stack when unset
	env := &envtest.Environment{BinaryAssetsDirectory: assets, ControlPlaneStartTimeout: 2 * time.Minute, ControlPlaneStopTimeout: time.Minute}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "envtest: start kube-apiserver and etcd from %s: %v\n", assets, err)
		return 1
	}
	defer env.Stop()
	cfg.QPS, cfg.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cluster, clientset = cfg, cs
	return m.Run()
}

// envtestAssets finds kube-apiserver and etcd: KUBEBUILDER_ASSETS, else
// the cache scripts/envtest.sh fills when it says it is complete.
func envtestAssets() (dir, why string) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, ""
	}
	script, err := filepath.Abs("../../../scripts/envtest.sh")
	if err != nil {
		return "", err.Error()
	}
	const hint = "no envtest binaries (kube-apiserver, etcd): run `make test-kube`, or set KUBEBUILDER_ASSETS"
	if err := exec.Command(script, "--check").Run(); err != nil {
		return "", hint
	}
	out, err := exec.Command(script).Output()
	if err != nil {
		return "", hint
	}
	return strings.TrimSpace(string(out)), ""
}

func needCluster(t *testing.T) {
	t.Helper()
	if clientset == nil {
		t.Skip(clusterSkip)
	}
}

var nsSeq atomic.Int64

// testNamespace makes a namespace of the test's own (envtest cannot
// delete namespaces: no controller empties them, so they stay).
func testNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", nsSeq.Add(1), dnsLabel(t.Name(), 40))
	_, err := clientset.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func testConfig(ns string) Config {
	c := DefaultConfig()
	c.Namespace = ns
	c.Image = "registry.example/aar:test"
	return c
}

// eventually polls cond every 10 ms for up to 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kubelet sets a pod's status as a kubelet would.
func kubelet(t *testing.T, ns, name string, set func(*corev1.PodStatus)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := clientset.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		set(&p.Status)
		_, err = clientset.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// running is a started pod's status: every container running.
func running(containers ...string) func(*corev1.PodStatus) {
	return func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.StartTime = ptrTime(time.Now())
		s.ContainerStatuses = nil
		for _, c := range containers {
			s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{Name: c, Ready: true, Image: "registry.example/aar:test",
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}})
		}
	}
}

func ptrTime(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}
