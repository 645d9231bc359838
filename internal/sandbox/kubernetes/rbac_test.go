package kubernetes

import (
	"context"
	"strings"
	"testing"

	"github.com/aar-lab/aar/internal/sandbox"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// asUser binds rules to a user in ns and returns a client acting as that
// user (the API server's RBAC decides every call).
func asUser(t *testing.T, ns, user string, rules []rbacv1.PolicyRule) (*rest.Config, kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	if _, err := clientset.RbacV1().Roles(ns).Create(ctx, Role(ns, user, rules), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}},
	}
	if _, err := clientset.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc := rest.CopyConfig(cluster)
	rc.Impersonate = rest.ImpersonationConfig{UserName: user}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return rc, cs
}

// TestRulesSuffice runs a sandbox's and a campaign's life as users who
// hold only SandboxRules and LauncherRules, and checks a user without them
// is refused.
func TestRulesSuffice(t *testing.T) {
	needCluster(t)
	ns := testNamespace(t)
	ctx := context.Background()

	rc, cs := asUser(t, ns, "aar-test-worker", SandboxRules())
	cfg := testConfig(ns)
	cfg.Token, cfg.Campaign = testToken, "rbac"
	b, err := NewBackend(cfg, rc, cs)
	if err != nil {
		t.Fatal(err)
	}
	ch := startCreate(ctx, b, sandbox.Spec{ID: "rbac-r-00000000", Shared: t.TempDir(), LabSocket: "/x"})
	pod := sandboxPod(t, ns, "rbac-r-00000000", ch)
	kubelet(t, ns, pod.Name, running(ContainerSandbox, ContainerFiles))
	c := waitCreated(t, ch)
	if c.err != nil {
		t.Fatalf("Create with SandboxRules: %v", c.err)
	}
	if err := c.sb.Destroy(ctx); err != nil {
		t.Fatalf("Destroy with SandboxRules: %v", err)
	}
	checkGone(t, ns, pod.Name)

	_, lcs := asUser(t, ns, "aar-test-launcher", LauncherRules())
	l, err := NewLauncher(testConfig(ns), lcs)
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.Launch(ctx, workerSpec("rbac", "r"), &syncBuffer{})
	if err != nil {
		t.Fatalf("Launch with LauncherRules: %v", err)
	}
	name := w.Describe()["pod"].(string)
	wait := startWait(w)
	kubelet(t, ns, name, func(s *corev1.PodStatus) {
		running(ContainerWorker)(s)
		s.Phase = corev1.PodSucceeded
		s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Message: "{}"}}
	})
	if r := waitResult(t, wait); r.err != nil {
		t.Fatalf("Wait with LauncherRules: %v", r.err)
	}
	if err := l.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup with LauncherRules: %v", err)
	}

	_, nobody := asUser(t, ns, "aar-test-nobody", nil)
	nb, err := NewBackend(testConfig(ns), rc, nobody)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nb.Create(ctx, sandbox.Spec{ID: "nobody-00000000"}); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("Create without rules: %v; want forbidden", err)
	}
}
