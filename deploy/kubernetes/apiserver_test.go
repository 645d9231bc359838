package kubernetes_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/aar-lab/aar/internal/launch"
	"github.com/aar-lab/aar/internal/sandbox"
	kube "github.com/aar-lab/aar/internal/sandbox/kubernetes"
)

// envtestVersion is the kube-apiserver scripts/envtest.sh builds.
const envtestVersion = "v1.37.2"

// envtestAssets finds kube-apiserver and etcd: $KUBEBUILDER_ASSETS, else
// scripts/envtest.sh's cache when `envtest.sh --check` says it is
// complete; otherwise the test is skipped (it never builds them).
func envtestAssets(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	script := filepath.Join("..", "..", "scripts", "envtest.sh")
	if out, err := exec.Command("bash", script, "--check").CombinedOutput(); err != nil {
		t.Skipf("no kube-apiserver and etcd for envtest (%s --check: %v %s): run `make test-kube`, or scripts/envtest.sh and then set KUBEBUILDER_ASSETS", script, err, out)
	}
	if d := os.Getenv("AAR_ENVTEST_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Skipf("no envtest cache directory: %v", err)
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "aar", "envtest", envtestVersion)
}

// warnings collects the API server's warning headers (Pod Security "warn"
// mode, deprecated fields): the manifests must draw none.
type warnings struct {
	mu   sync.Mutex
	list []string // guarded by mu
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// TestAPIServer creates every object of the base, of each overlay and of
// the examples in its own namespace on a real kube-apiserver (server-side
// validation, strict field validation, admission with Pod Security
// "restricted"), then acts as the aar-worker and aar-lab service accounts
// to see that RBAC allows what they need and refuses the rest. No kubelet
// runs: pods are stored, never started.
func TestAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	assets := envtestAssets(t)
	ctrllog.SetLogger(logr.Discard())
	no := false
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		UseExistingCluster:       &no, // never a cluster named by USE_EXISTING_CLUSTER
		ControlPlaneStartTimeout: 3 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver and etcd from %s: %v", assets, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	t.Logf("kube-apiserver %s from %s ready in %s", envtestVersion, assets, time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	warn := &warnings{}
	admin := rest.CopyConfig(cfg)
	admin.WarningHandler = warn
	dyn, err := dynamic.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(disc)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	cs := kubernetes.NewForConfigOrDie(admin)

	for _, dir := range kustomizations {
		ns := "t-" + filepath.Base(dir)
		t.Run(dir, func(t *testing.T) {
			objs, err := render(os.DirFS("."), dir)
			if err != nil {
				t.Fatal(err)
			}
			setNamespace(objs, ns)
			createAll(ctx, t, dyn, mapper, objs)
			if w := warn.take(); len(w) > 0 {
				t.Errorf("the API server warned: %q", w)
			}
		})
	}
	ns := "t-base"
	t.Run("examples", func(t *testing.T) {
		var objs []*unstructured.Unstructured
		for _, f := range examples {
			more, err := readObjects(os.DirFS("."), f)
			if err != nil {
				t.Fatal(err)
			}
			objs = append(objs, more...)
		}
		setNamespace(objs, ns)
		createAll(ctx, t, dyn, mapper, objs)
		if w := warn.take(); len(w) > 0 {
			t.Errorf("the API server warned: %q", w)
		}
	})
	t.Run("kubectl apply -k", func(t *testing.T) { testKubectlApply(t, env.KubeConfig) })
	if t.Failed() {
		t.FailNow()
	}
	t.Run("pod security", func(t *testing.T) { testPodSecurity(ctx, t, cs, ns) })
	t.Run("worker RBAC", func(t *testing.T) { testWorkerRBAC(ctx, t, cfg, ns) })
	t.Run("supervisor RBAC", func(t *testing.T) { testSupervisorRBAC(ctx, t, cfg, ns) })
	t.Run("backend launcher as aar-lab", func(t *testing.T) { testLauncher(ctx, t, cfg, ns) })
	t.Run("backend sandbox as aar-worker", func(t *testing.T) { testBackend(ctx, t, cfg, ns) })
}

// createOrder creates what others refer to first; the ResourceQuota last,
// so that it constrains nothing being set up.
var createOrder = map[string]int{
	"Namespace": 0, "ServiceAccount": 1, "Role": 2, "RoleBinding": 3, "Secret": 4, "ConfigMap": 5,
	"PersistentVolumeClaim": 6, "Service": 7, "NetworkPolicy": 8, "StatefulSet": 9, "Deployment": 10, "Job": 11,
	"ResourceQuota": 12,
}

func createAll(ctx context.Context, t *testing.T, dyn dynamic.Interface, mapper meta.RESTMapper, objs []*unstructured.Unstructured) {
	t.Helper()
	sort.SliceStable(objs, func(i, j int) bool { return createOrder[objs[i].GetKind()] < createOrder[objs[j].GetKind()] })
	for _, u := range objs {
		if _, ok := createOrder[u.GetKind()]; !ok {
			t.Fatalf("%s: add its kind to createOrder", id(u))
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", id(u), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if u.GetNamespace() == "" {
				t.Fatalf("%s: namespaced, but no namespace", id(u))
			}
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		} else if isNamespaced(u) {
			t.Errorf("%s: cluster-scoped on the server, namespaced for the renderer: fix clusterScoped", id(u))
		}
		// Strict: the server rejects unknown and duplicate fields itself,
		// on exactly the bytes rendered.
		got, err := ri.Create(ctx, u, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict, FieldManager: "aar-deploy-test"})
		if err != nil {
			t.Errorf("create %s in %q: %v", id(u), u.GetNamespace(), err)
			continue
		}
		t.Logf("created %s %s/%s", got.GetKind(), got.GetNamespace(), got.GetName())
	}
}

// testPodSecurity submits every pod template of the base and the run Job as
// a Pod (server-side dry run) to the namespace, where Pod Security
// "restricted" is enforced; and a privileged pod, which must be refused, to
// show the check has teeth.
func testPodSecurity(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	base := build(t, "base")
	pods := base.podTemplates()
	for k, v := range readExample(t, "examples/run-job.yaml").podTemplates() {
		pods[k] = v
	}
	claims := map[string][]corev1.PersistentVolumeClaim{}
	for _, sts := range all[*appsv1.StatefulSet](base) {
		claims["StatefulSet/"+sts.Name] = sts.Spec.VolumeClaimTemplates
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict}
	for name, tmpl := range pods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "psa-" + strings.ToLower(strings.NewReplacer("/", "-", "--", "-").Replace(strings.TrimSuffix(name, "-"))), Labels: tmpl.Labels},
			Spec:       *tmpl.Spec.DeepCopy(),
		}
		// What the StatefulSet controller adds: a volume per claim template.
		for _, c := range claims[name] {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name + "-" + pod.Name},
			}})
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, dry); err != nil {
			t.Errorf("%s as a pod in %s: %v", name, ns, err)
		}
	}
	bad := sandboxPod("psa-privileged")
	bad.Spec.Containers[0].SecurityContext.Privileged = ptr(true)
	bad.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr(true)
	_, err := cs.CoreV1().Pods(ns).Create(ctx, bad, dry)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("a privileged pod in %s: err = %v, want Pod Security to forbid it", ns, err)
	}
}

// sandboxPod is a pod like the ones a worker creates: restricted, no token,
// labelled as a sandbox.
func sandboxPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"aar.dev/role": "sandbox"}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr(false),
			EnableServiceLinks:           ptr(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr(true),
				RunAsUser:      ptr(int64(10001)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "sandbox", Image: "aar:latest", Command: []string{"sleep", "infinity"},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

// as is cfg acting as a service account of ns, as the API server sees a
// pod's token.
func as(t *testing.T, cfg *rest.Config, ns, account string) kubernetes.Interface {
	t.Helper()
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + account,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	return kubernetes.NewForConfigOrDie(c)
}

// access is one operation and whether the account may do it.
type access struct {
	name string
	// allowed: the call must succeed (ok) or fail for a reason other than
	// authorization (reach: e.g. exec into a pod no kubelet runs). Denied
	// calls must be Forbidden.
	want string
	do   func(ctx context.Context) error
}

const (
	ok     = "ok"
	reach  = "authorized"
	denied = "forbidden"
)

func checkAccess(ctx context.Context, t *testing.T, who string, checks []access) {
	t.Helper()
	for _, c := range checks {
		err := c.do(ctx)
		switch {
		case c.want == ok && err != nil:
			t.Errorf("%s: %s: %v, want it allowed", who, c.name, err)
		case c.want == reach && (apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)):
			t.Errorf("%s: %s: %v, want it authorized", who, c.name, err)
		case c.want == denied && !apierrors.IsForbidden(err):
			t.Errorf("%s: %s: err = %v, want Forbidden", who, c.name, err)
		default:
			t.Logf("%s: %s: %s (%v)", who, c.name, c.want, err)
		}
	}
}

// waitAuthorized polls until RBAC lets cs list pods in ns: Roles and
// bindings just created reach the authorizer's cache shortly after.
func waitAuthorized(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
			t.Fatalf("list pods: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func execCall(cs kubernetes.Interface, ns, pod, verb string) func(context.Context) error {
	return func(ctx context.Context) error {
		req := cs.CoreV1().RESTClient().Verb(verb).Namespace(ns).Resource("pods").Name(pod).SubResource("exec").
			Param("container", "sandbox").Param("command", "true").Param("stdout", "true")
		return req.Do(ctx).Error()
	}
}

func watchOnce(w func(context.Context, metav1.ListOptions) (watch.Interface, error)) func(context.Context) error {
	return func(ctx context.Context) error {
		wi, err := w(ctx, metav1.ListOptions{TimeoutSeconds: ptr(int64(1))})
		if err != nil {
			return err
		}
		wi.Stop()
		return nil
	}
}

func testWorkerRBAC(ctx context.Context, t *testing.T, cfg *rest.Config, ns string) {
	w := as(t, cfg, ns, workerName)
	waitAuthorized(ctx, t, w, ns)
	const sb = "sandbox-r1"
	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: sb},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"aar.dev/sandbox": sb}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{labLabel: labName}}}},
			}},
		},
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: sb}, StringData: map[string]string{"token": "x"}}
	pods, secrets, nps := w.CoreV1().Pods(ns), w.CoreV1().Secrets(ns), w.NetworkingV1().NetworkPolicies(ns)
	checkAccess(ctx, t, workerName, []access{
		{"create a sandbox pod", ok, func(ctx context.Context) error {
			_, err := pods.Create(ctx, sandboxPod(sb), metav1.CreateOptions{})
			return err
		}},
		{"get it", ok, func(ctx context.Context) error { _, err := pods.Get(ctx, sb, metav1.GetOptions{}); return err }},
		{"watch pods", ok, watchOnce(func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return pods.Watch(ctx, o) })},
		{"exec into it (SPDY, POST)", reach, execCall(w, ns, sb, "POST")},
		{"exec into it (WebSocket, GET)", reach, execCall(w, ns, sb, "GET")},
		{"create its Secret", ok, func(ctx context.Context) error {
			_, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
			return err
		}},
		{"create its NetworkPolicy", ok, func(ctx context.Context) error { _, err := nps.Create(ctx, policy, metav1.CreateOptions{}); return err }},
		{"make the pod own its Secret", ok, patch(secrets.Patch, sb)},
		{"make the pod own its NetworkPolicy", ok, patch(nps.Patch, sb)},
		{"delete its NetworkPolicy", ok, func(ctx context.Context) error { return nps.Delete(ctx, sb, metav1.DeleteOptions{}) }},
		{"delete its Secret", ok, func(ctx context.Context) error { return secrets.Delete(ctx, sb, metav1.DeleteOptions{}) }},
		{"delete the sandbox pod", ok, func(ctx context.Context) error { return pods.Delete(ctx, sb, metav1.DeleteOptions{}) }},

		{"read the database password", denied, func(ctx context.Context) error { _, err := secrets.Get(ctx, pgName, metav1.GetOptions{}); return err }},
		{"list secrets", denied, func(ctx context.Context) error { _, err := secrets.List(ctx, metav1.ListOptions{}); return err }},
		{"watch secrets", denied, watchOnce(func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return secrets.Watch(ctx, o) })},
		{"update a secret", denied, func(ctx context.Context) error {
			_, err := secrets.Update(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: pgName}}, metav1.UpdateOptions{})
			return err
		}},
		{"read a NetworkPolicy", denied, func(ctx context.Context) error { _, err := nps.Get(ctx, labName, metav1.GetOptions{}); return err }},
		{"list NetworkPolicies", denied, func(ctx context.Context) error { _, err := nps.List(ctx, metav1.ListOptions{}); return err }},
		{"delete all NetworkPolicies", denied, func(ctx context.Context) error {
			return nps.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		}},
		{"patch a pod", denied, patch(pods.Patch, sb)},
		{"delete all pods", denied, func(ctx context.Context) error {
			return pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		}},
		{"read pod logs", denied, func(ctx context.Context) error { return pods.GetLogs(sb, &corev1.PodLogOptions{}).Do(ctx).Error() }},
		{"attach to a pod", denied, func(ctx context.Context) error {
			return w.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(sb).SubResource("attach").Do(ctx).Error()
		}},
		{"mint a token for aar-lab", denied, func(ctx context.Context) error {
			_, err := w.CoreV1().ServiceAccounts(ns).CreateToken(ctx, labName, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
			return err
		}},
		{"create a ConfigMap", denied, func(ctx context.Context) error {
			_, err := w.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			return err
		}},
		{"create a RoleBinding", denied, func(ctx context.Context) error { return createAdminBinding(ctx, w, ns, workerName) }},
		{"delete the namespace", denied, func(ctx context.Context) error {
			return w.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		}},
		{"create a pod in another namespace", denied, func(ctx context.Context) error {
			_, err := w.CoreV1().Pods("t-dev").Create(ctx, sandboxPod(sb), metav1.CreateOptions{})
			return err
		}},
		{"list nodes", denied, func(ctx context.Context) error {
			_, err := w.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return err
		}},
	})
}

func testSupervisorRBAC(ctx context.Context, t *testing.T, cfg *rest.Config, ns string) {
	s := as(t, cfg, ns, labName)
	waitAuthorized(ctx, t, s, ns)
	const wk = "worker-r1"
	worker := sandboxPod(wk)
	worker.Labels = map[string]string{"aar.dev/role": "worker"}
	worker.Spec.ServiceAccountName = workerName
	worker.Spec.AutomountServiceAccountToken = ptr(true)
	pods, secrets, cms := s.CoreV1().Pods(ns), s.CoreV1().Secrets(ns), s.CoreV1().ConfigMaps(ns)
	sweep := metav1.ListOptions{LabelSelector: "aar.dev/campaign=rbac-test"}
	checkAccess(ctx, t, labName, []access{
		{"create a worker pod", ok, func(ctx context.Context) error {
			_, err := pods.Create(ctx, worker, metav1.CreateOptions{})
			return err
		}},
		{"get it", ok, func(ctx context.Context) error { _, err := pods.Get(ctx, wk, metav1.GetOptions{}); return err }},
		{"list pods", ok, func(ctx context.Context) error { _, err := pods.List(ctx, metav1.ListOptions{}); return err }},
		{"watch pods", ok, watchOnce(func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return pods.Watch(ctx, o) })},
		{"read its log", reach, func(ctx context.Context) error { return pods.GetLogs(wk, &corev1.PodLogOptions{}).Do(ctx).Error() }},
		{"create its token Secret", ok, func(ctx context.Context) error {
			_, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: wk}, StringData: map[string]string{"token": "x"}}, metav1.CreateOptions{})
			return err
		}},
		{"create its ConfigMap", ok, func(ctx context.Context) error {
			_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: wk}, Data: map[string]string{"directions": "x"}}, metav1.CreateOptions{})
			return err
		}},
		{"get its ConfigMap", ok, func(ctx context.Context) error { _, err := cms.Get(ctx, wk, metav1.GetOptions{}); return err }},
		{"delete its ConfigMap", ok, func(ctx context.Context) error { return cms.Delete(ctx, wk, metav1.DeleteOptions{}) }},
		{"delete its Secret", ok, func(ctx context.Context) error { return secrets.Delete(ctx, wk, metav1.DeleteOptions{}) }},
		{"delete the worker pod", ok, func(ctx context.Context) error { return pods.Delete(ctx, wk, metav1.DeleteOptions{}) }},
		// The end-of-campaign sweep, by label.
		{"sweep pods", ok, func(ctx context.Context) error { return pods.DeleteCollection(ctx, metav1.DeleteOptions{}, sweep) }},
		{"sweep NetworkPolicies", ok, func(ctx context.Context) error {
			return s.NetworkingV1().NetworkPolicies(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sweep)
		}},
		{"sweep Secrets", ok, func(ctx context.Context) error { return secrets.DeleteCollection(ctx, metav1.DeleteOptions{}, sweep) }},
		{"sweep ConfigMaps", ok, func(ctx context.Context) error { return cms.DeleteCollection(ctx, metav1.DeleteOptions{}, sweep) }},

		{"read the admin token Secret", denied, func(ctx context.Context) error {
			_, err := secrets.Get(ctx, "aar-admin", metav1.GetOptions{})
			return err
		}},
		{"read the database password", denied, func(ctx context.Context) error { _, err := secrets.Get(ctx, pgName, metav1.GetOptions{}); return err }},
		{"list secrets", denied, func(ctx context.Context) error { _, err := secrets.List(ctx, metav1.ListOptions{}); return err }},
		{"exec into a pod", denied, execCall(s, ns, wk, "POST")},
		{"create a NetworkPolicy", denied, func(ctx context.Context) error {
			_, err := s.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			return err
		}},
		{"delete the lab's NetworkPolicy", denied, func(ctx context.Context) error {
			return s.NetworkingV1().NetworkPolicies(ns).Delete(ctx, labName, metav1.DeleteOptions{})
		}},
		{"patch a pod", denied, patch(pods.Patch, wk)},
		{"patch a Secret", denied, patch(secrets.Patch, pgName)},
		{"read Deployments", denied, func(ctx context.Context) error {
			_, err := s.AppsV1().Deployments(ns).Get(ctx, labName, metav1.GetOptions{})
			return err
		}},
		{"create a RoleBinding", denied, func(ctx context.Context) error { return createAdminBinding(ctx, s, ns, labName) }},
		{"delete the namespace", denied, func(ctx context.Context) error {
			return s.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		}},
	})
}

// patch returns a call that merge-patches name with a harmless label.
func patch[T any](p func(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (T, error), name string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := p(ctx, name, types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{})
		return err
	}
}

// createAdminBinding tries to bind the built-in admin ClusterRole to
// account in ns: a Role-holder's classic escalation.
func createAdminBinding(ctx context.Context, cs kubernetes.Interface, ns, account string) error {
	_, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "escalate"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: account, Namespace: ns}},
	}, metav1.CreateOptions{})
	if err == nil {
		return errors.New("created")
	}
	return err
}

// testKubectlApply runs the commands deploy/README.md gives, with the
// kubectl on PATH (its built-in kustomize, not the test renderer), into the
// real namespace aar: apply the dev overlay, apply it again (a re-apply must
// not trip over immutable fields), then the runs claim and a campaign Job.
func testKubectlApply(t *testing.T, kubeconfig []byte) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed")
	}
	tmp := t.TempDir()
	cfgFile, cacheDir := filepath.Join(tmp, "kubeconfig"), filepath.Join(tmp, "cache")
	if err := os.WriteFile(cfgFile, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		args []string
		want string // the whole output, where it matters
	}{
		{args: []string{"apply", "-k", "overlays/dev"}},
		{args: []string{"apply", "-k", "overlays/dev"}},
		// Re-applying changed nothing: kubectl diff exits 0 only then, and
		// no object's spec was rewritten (kubectl reports the StatefulSet
		// "configured" because it resends volumeClaimTemplates whole).
		{args: []string{"diff", "-k", "overlays/dev"}, want: ""},
		{args: []string{"-n", namespace, "get", "statefulset/" + pgName, "deployment/" + labName, "networkpolicy/" + pgName,
			"-o", "jsonpath={range .items[*]}{.kind}={.metadata.generation} {end}"}, want: "StatefulSet=1 Deployment=1 NetworkPolicy=1"},
		{args: []string{"apply", "-f", "examples/runs-pvc.yaml"}},
		{args: []string{"create", "-f", "examples/run-job.yaml"}},
	} {
		args := step.args
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", cfgFile, "--cache-dir", cacheDir}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		if strings.Contains(stderr.String(), "Warning") {
			t.Errorf("kubectl %s warned:\n%s", strings.Join(args, " "), stderr.String())
		}
		if step.want != "" || args[0] == "diff" {
			if got := strings.TrimSpace(stdout.String()); got != step.want {
				t.Errorf("kubectl %s: %q, want %q", strings.Join(args, " "), got, step.want)
			}
		}
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), strings.TrimSpace(stdout.String()))
	}
}

// testLauncher runs the sandbox backend's own Launcher (what `aar run
// --sandbox kubernetes` uses) as the aar-lab service account: it must be
// able to start a worker pod (which Pod Security "restricted" must admit)
// and sweep the campaign away afterwards, with nothing but the base's Role.
func testLauncher(ctx context.Context, t *testing.T, cfg *rest.Config, ns string) {
	s := as(t, cfg, ns, labName)
	kc := kube.DefaultConfig()
	kc.Namespace, kc.Image = ns, "aar:latest"
	l, err := kube.NewLauncher(kc, s)
	if err != nil {
		t.Fatal(err)
	}
	spec := launch.Spec{Campaign: "deploy-test", Researcher: "r1", Token: "aar_test_token",
		Args: []string{"researcher", "--lab", kc.LabURL, "--name", "r1", "--data", kc.WorkerDataDir}}
	w, err := l.Launch(ctx, spec, io.Discard)
	if err != nil {
		t.Fatalf("Launch as %s: %v", labName, err)
	}
	t.Logf("launched %v", w.Describe())
	pods, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "aar.dev/campaign=deploy-test"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("the worker pod: %v, %v", pods, err)
	}
	if sa := pods.Items[0].Spec.ServiceAccountName; sa != workerName {
		t.Errorf("worker pod runs as %q, want %q", sa, workerName)
	}
	if err := l.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup as %s: %v", labName, err)
	}
}

// testBackend runs the sandbox backend's Create as the aar-worker service
// account. With no kubelet the sandbox pod never runs, so Create must get
// as far as waiting for it (its policy, Secret and pod created, Pod
// Security admitting the pod, the owners set) and then give up and remove
// what it made.
func testBackend(ctx context.Context, t *testing.T, cfg *rest.Config, ns string) {
	rc := rest.CopyConfig(cfg)
	rc.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + workerName,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	w := kubernetes.NewForConfigOrDie(rc)
	kc := kube.DefaultConfig()
	kc.Namespace, kc.Image, kc.Campaign = ns, "aar:latest", "deploy-test"
	b, err := kube.NewBackend(kc, rc, w)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = b.Create(cctx, sandbox.Spec{ID: "deploy-r1-00000000"})
	if err == nil {
		t.Fatal("Create succeeded with no kubelet to run the pod")
	}
	for _, stage := range []string{"create network policy", "create secret", "create pod", "set its owners", "forbidden"} {
		if strings.Contains(err.Error(), stage) {
			t.Fatalf("Create as %s failed before waiting for the pod: %v", workerName, err)
		}
	}
	t.Logf("Create stopped where it should, waiting for a kubelet: %v", err)
	admin := kubernetes.NewForConfigOrDie(cfg)
	sel := metav1.ListOptions{LabelSelector: "aar.dev/campaign=deploy-test,aar.dev/role=sandbox"}
	if pods, err := admin.CoreV1().Pods(ns).List(ctx, sel); err != nil || len(pods.Items) != 0 {
		t.Errorf("after the failed Create: pods %v (%v), want none", pods, err)
	}
}
