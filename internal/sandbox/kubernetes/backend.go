package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/sandbox"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// Backend makes sandboxes as pods in Config.Namespace.
type Backend struct {
	cfg    Config
	rest   *rest.Config
	client kubernetes.Interface
}

var _ sandbox.Backend = (*Backend)(nil)

// NewBackend validates cfg (after filling defaults) and returns a backend
// that talks to the cluster through rc (exec) and client (everything
// else); see NewClient.
func NewBackend(cfg Config, rc *rest.Config, client kubernetes.Interface) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rc == nil || client == nil {
		return nil, errors.New("kubernetes backend: no cluster client (see NewClient)")
	}
	return &Backend{cfg: cfg.withDefaults(), rest: rc, client: client}, nil
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// Create implements sandbox.Backend: it makes the sandbox's NetworkPolicy
// (first, so the pod never runs unfenced), its Secret and its pod, waits
// for the pod to run, and copies spec.Data into /data. Spec.LabSocket
// only says that the sandbox needs the lab: it reaches Config.LabURL with
// Config.Token (AAR_LAB, AAR_TOKEN). Spec.AarBinary is not copied (the
// image has its own aar) and Spec.Profile names no image (Config.Image is
// the toolset). On any failure nothing is left behind.
func (b *Backend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	if !idRE.MatchString(spec.ID) {
		return nil, fmt.Errorf("sandbox id %q: use 1-64 lower-case letters, digits, '.', '_' or '-'", spec.ID)
	}
	lim := spec.Limits.WithDefaults()
	lab := spec.LabSocket != ""
	if lab {
		if b.cfg.LabURL == "" {
			return nil, fmt.Errorf("sandbox %s needs the lab: set the kubernetes config's LabURL (AAR_KUBE_LAB_URL) to the lab's in-cluster URL", spec.ID)
		}
		if b.cfg.Token == "" {
			return nil, fmt.Errorf("sandbox %s needs the lab: set the kubernetes config's Token to the researcher's lab token", spec.ID)
		}
	}
	var dataBytes int64
	if spec.Data != "" {
		n, err := treeSize(spec.Data)
		if err != nil {
			return nil, fmt.Errorf("sandbox data %s: %w", spec.Data, err)
		}
		dataBytes = n
	}
	if spec.Shared != "" {
		if _, err := os.Stat(spec.Shared); err != nil {
			return nil, fmt.Errorf("sandbox shared %s: %w", spec.Shared, err)
		}
	}
	objs := buildSandbox(b.cfg, spec, lim, lab, dataBytes)
	s := &box{b: b, spec: spec, lim: lim, name: objs.pod.Name, sent: map[string]stamp{}, created: time.Now()}
	for _, w := range warningsFor(b.cfg, spec, lim) {
		s.Warn("%s", w)
	}
	fail := func(err error) (sandbox.Sandbox, error) {
		if derr := s.Destroy(context.WithoutCancel(ctx)); derr != nil {
			b.cfg.Logger.Warn("remove a sandbox that failed to start", "sandbox", spec.ID, "err", derr)
		}
		return nil, err
	}
	ns := b.cfg.Namespace
	if _, err := b.client.NetworkingV1().NetworkPolicies(ns).Create(ctx, objs.policy, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("sandbox %s: create network policy %s/%s: %w", spec.ID, ns, objs.policy.Name, err)
	}
	if _, err := b.client.CoreV1().Secrets(ns).Create(ctx, objs.secret, metav1.CreateOptions{}); err != nil {
		return fail(fmt.Errorf("sandbox %s: create secret %s/%s: %w", spec.ID, ns, objs.secret.Name, err))
	}
	pod, err := b.client.CoreV1().Pods(ns).Create(ctx, objs.pod, metav1.CreateOptions{})
	if err != nil {
		return fail(fmt.Errorf("sandbox %s: create pod %s/%s: %w", spec.ID, ns, objs.pod.Name, err))
	}
	if err := b.adopt(ctx, pod); err != nil {
		return fail(fmt.Errorf("sandbox %s: %w", spec.ID, err))
	}
	b.cfg.Logger.Info("sandbox pod created", "sandbox", spec.ID, "namespace", ns, "pod", objs.pod.Name)
	if err := b.waitRunning(ctx, objs.pod.Name); err != nil {
		return fail(fmt.Errorf("sandbox %s: %w", spec.ID, err))
	}
	if spec.Data != "" {
		if err := s.uploadData(ctx); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// adopt makes the sandbox's NetworkPolicy and Secret dependents of its pod
// as well as of Config.Owner: the garbage collector removes an object only
// once all its owners are gone, so when a worker pod goes, the policy
// stays until the sandbox pod (deleted gracefully, after the kubelet has
// killed it) has gone too.
func (b *Backend) adopt(ctx context.Context, pod *corev1.Pod) error {
	refs := append(owners(b.cfg.Owner), metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID})
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": refs}})
	if err != nil {
		return err
	}
	ns := b.cfg.Namespace
	if _, err := b.client.NetworkingV1().NetworkPolicies(ns).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("network policy %s/%s: set its owners: %w", ns, pod.Name, err)
	}
	if _, err := b.client.CoreV1().Secrets(ns).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("secret %s/%s: set its owners: %w", ns, pod.Name, err)
	}
	return nil
}

// waitRunning watches a sandbox pod until it runs (every container
// running), failing at once when it cannot: failed, unschedulable, an
// image it cannot pull, a container that ended, deleted; or when ctx (or,
// without a deadline, Config.StartTimeout) ends.
func (b *Backend) waitRunning(ctx context.Context, name string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.StartTimeout)
		defer cancel()
	}
	last, err := watchPod(ctx, b.client, b.cfg.Namespace, name, func(p *corev1.Pod) (bool, error) {
		if why := podTrouble(p, true); why != "" {
			return false, fmt.Errorf("pod %s/%s will not run: %s", p.Namespace, p.Name, why)
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			return false, fmt.Errorf("pod %s/%s ended before it ran a command", p.Namespace, p.Name)
		case corev1.PodRunning:
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Terminated != nil {
					return false, fmt.Errorf("pod %s/%s: container %s ended: %s, exit code %d", p.Namespace, p.Name, cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
				}
				if cs.State.Running == nil {
					return false, nil
				}
			}
			return true, nil
		}
		return false, nil
	})
	switch {
	case errors.Is(err, errPodGone):
		return fmt.Errorf("pod %s/%s was deleted before it ran", b.cfg.Namespace, name)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("pod %s/%s is not running (%s): %w", b.cfg.Namespace, name, describePod(last), err)
	}
	return err
}

// warningsFor lists the limits a pod does not enforce.
func warningsFor(cfg Config, spec sandbox.Spec, lim sandbox.Limits) []string {
	w := []string{
		fmt.Sprintf("the process limit (%d) is not set per pod: the node's kubelet podPidsLimit applies", lim.Pids),
		"command CPU time is not measured in kubernetes sandboxes: CPU budgets see 0",
		"network isolation is a NetworkPolicy: the cluster's network plugin must enforce it (Calico, Cilium, …)",
	}
	if spec.Profile != "" && spec.Profile != "cpu" {
		w = append(w, fmt.Sprintf("sandbox profile %q is ignored: the image %s is the kubernetes sandbox's toolset", spec.Profile, cfg.Image))
	}
	return w
}

// box is one sandbox pod.
type box struct {
	b       *Backend
	spec    sandbox.Spec
	lim     sandbox.Limits
	name    string // the pod's, the NetworkPolicy's and the Secret's
	created time.Time

	syncMu sync.Mutex
	sent   map[string]stamp // guarded by syncMu; /shared files already sent

	sandbox.Warned // what a pod does not enforce

	mu        sync.Mutex
	destroyed bool // guarded by mu
}

var _ sandbox.Sandbox = (*box)(nil)

func (s *box) ID() string { return s.spec.ID }

// LabURL is where the sandbox's commands reach the lab (AAR_LAB, with
// AAR_TOKEN, in every command's environment), "" when they cannot: on a
// cluster there is no lab socket at /run/aar/lab.sock. Found by type
// assertion (interface{ LabURL() string }).
func (s *box) LabURL() string {
	if s.spec.LabSocket == "" {
		return ""
	}
	return s.b.cfg.LabURL
}

func (s *box) alive() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return fmt.Errorf("sandbox %s is destroyed", s.spec.ID)
	}
	return nil
}

// workspacePath turns a workspace-relative path into its absolute path,
// refusing absolute paths, ".." and the workspace itself.
func workspacePath(rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") {
		return "", fmt.Errorf("workspace path %q: give a path relative to /workspace", rel)
	}
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", fmt.Errorf("workspace path %q: \"..\" may not leave /workspace", rel)
		}
	}
	if strings.ContainsRune(rel, 0) {
		return "", fmt.Errorf("workspace path %q holds a NUL byte", rel)
	}
	clean := path.Clean(rel)
	if clean == "." {
		return "", fmt.Errorf("workspace path %q names the workspace itself, not a file in it", rel)
	}
	return workspaceDir + "/" + clean, nil
}

// fileTimeout bounds WriteFile and ReadFile.
const fileTimeout = 2 * time.Minute

// maxReadFile is the most ReadFile returns.
const maxReadFile = 64 << 20

// writeScript writes stdin to $1 (creating its directories), refusing
// anything but a regular file (a FIFO would hang).
const writeScript = `f=$1
mkdir -p -- "$(dirname -- "$f")" || exit 1
if [ -e "$f" ] && [ ! -f "$f" ]; then echo "not a regular file" >&2; exit 1; fi
exec timeout -s KILL 100 cat > "$f"`

// readScript prints at most $2 bytes of the regular file $1.
const readScript = `f=$1
if [ ! -f "$f" ]; then
	if [ -e "$f" ]; then echo "not a regular file" >&2; else echo "no such file" >&2; fi
	exit 1
fi
exec timeout -s KILL 100 head -c "$2" -- "$f"`

// WriteFile implements sandbox.Sandbox through exec (cat, as the
// sandbox's uid, so it reaches nothing its commands could not).
func (s *box) WriteFile(rel string, data []byte) error {
	p, err := workspacePath(rel)
	if err != nil {
		return err
	}
	if err := s.alive(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), fileTimeout)
	defer cancel()
	out := &sandbox.Capped{Max: 4096}
	err = s.b.stream(ctx, s.name, ContainerSandbox, []string{"/bin/sh", "-c", writeScript, "aar-write", p}, bytes.NewReader(data), out, out)
	if err != nil {
		return fmt.Errorf("sandbox %s: write %s: %w: %s", s.spec.ID, p, err, strings.TrimSpace(out.Buf.String()))
	}
	return nil
}

// ReadFile implements sandbox.Sandbox (at most 64 MiB) through exec.
func (s *box) ReadFile(rel string) ([]byte, error) {
	p, err := workspacePath(rel)
	if err != nil {
		return nil, err
	}
	if err := s.alive(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), fileTimeout)
	defer cancel()
	out := &sandbox.Capped{Max: maxReadFile}
	errw := &sandbox.Capped{Max: 4096}
	err = s.b.stream(ctx, s.name, ContainerSandbox, []string{"/bin/sh", "-c", readScript, "aar-read", p, fmt.Sprint(maxReadFile)}, nil, out, errw)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: read %s: %w: %s", s.spec.ID, p, err, strings.TrimSpace(errw.Buf.String()))
	}
	return out.Buf.Bytes(), nil
}

// ReadTree implements sandbox.TreeReader: /workspace as one tar stream,
// one exec instead of one per file.
func (s *box) ReadTree(ctx context.Context) ([]sandbox.File, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	out := &sandbox.Capped{Max: sandbox.MaxTree}
	errw := &sandbox.Capped{Max: 4096}
	if err := s.b.stream(ctx, s.name, ContainerSandbox, sandbox.TreeCommand, nil, out, errw); err != nil {
		return nil, fmt.Errorf("sandbox %s: read /workspace: %w: %s", s.spec.ID, err, strings.TrimSpace(errw.Buf.String()))
	}
	if out.Dropped > 0 {
		return nil, fmt.Errorf("sandbox %s: /workspace holds more than %d MiB", s.spec.ID, sandbox.MaxTree>>20)
	}
	return sandbox.ReadTar(&out.Buf)
}

// destroyWait bounds how long Destroy waits for the pod to go.
const destroyWait = time.Minute

// Destroy implements sandbox.Sandbox: it deletes the pod with a 1 s grace
// period (kubectl's --grace-period=0; a true 0 is a force delete, which
// drops the object before the kubelet has killed the containers), waits
// until the pod is gone, and only then deletes the NetworkPolicy (so no
// process of the sandbox ever runs unfenced) and the Secret. Idempotent;
// objects already gone are no error.
func (s *box) Destroy(ctx context.Context) error {
	s.mu.Lock()
	s.destroyed = true
	s.mu.Unlock()
	ns := s.b.cfg.Namespace
	var errs []error
	gone := func(kind string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("sandbox %s: delete %s %s/%s: %w", s.spec.ID, kind, ns, s.name, err))
		}
	}
	gone("secret", s.b.client.CoreV1().Secrets(ns).Delete(ctx, s.name, metav1.DeleteOptions{}))
	err := s.b.client.CoreV1().Pods(ns).Delete(ctx, s.name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1)})
	gone("pod", err)
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, destroyWait)
		_, err = watchPod(wctx, s.b.client, ns, s.name, func(*corev1.Pod) (bool, error) { return false, nil })
		cancel()
		if !errors.Is(err, errPodGone) {
			// Keep the fence up while anything may still run.
			errs = append(errs, fmt.Errorf("sandbox %s: pod %s/%s is still there (%v): its network policy stays; destroy again", s.spec.ID, ns, s.name, err))
			return errors.Join(errs...)
		}
	}
	gone("network policy", s.b.client.NetworkingV1().NetworkPolicies(ns).Delete(ctx, s.name, metav1.DeleteOptions{}))
	return errors.Join(errs...)
}
