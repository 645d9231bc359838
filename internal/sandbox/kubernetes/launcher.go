package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aar-lab/aar/internal/launch"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Launcher starts each researcher's worker as a pod running the image's
// `aar researcher … --sandbox kubernetes`, which makes its sandboxes
// through this package's Backend (configured by FromEnv). Every worker
// pod and Secret of a campaign is owned by one ConfigMap
// (aar-campaign-…), so deleting it removes the campaign on a cluster;
// Cleanup does that and deletes the rest by label, after which the
// Launcher starts nothing more.
type Launcher struct {
	cfg    Config
	client kubernetes.Interface

	ctx    context.Context // ends every worker's watch; Cleanup cancels it
	cancel context.CancelFunc
	wg     sync.WaitGroup // the workers' goroutines

	mu     sync.Mutex
	owners map[string]*corev1.ConfigMap // guarded by mu; by campaign
}

var _ launch.Launcher = (*Launcher)(nil)

// NewLauncher validates cfg (after filling defaults) and returns a
// launcher for cfg.Namespace.
func NewLauncher(cfg Config, client kubernetes.Interface) (*Launcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("kubernetes launcher: no cluster client (see NewClient)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Launcher{cfg: cfg.withDefaults(), client: client, ctx: ctx, cancel: cancel, owners: map[string]*corev1.ConfigMap{}}, nil
}

// owner returns the campaign's owner ConfigMap, making it on first use (or
// finding it, for a resumed campaign).
func (l *Launcher) owner(ctx context.Context, camp string) (*corev1.ConfigMap, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cm, ok := l.owners[camp]; ok {
		return cm, nil
	}
	cms := l.client.CoreV1().ConfigMaps(l.cfg.Namespace)
	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: campaignOwnerName(camp), Namespace: l.cfg.Namespace,
			Labels: objectLabels(camp, "", RoleCampaign), OwnerReferences: owners(l.cfg.Owner)},
		Data: map[string]string{"campaign": camp},
	}
	cm, err := cms.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cm, err = cms.Get(ctx, want.Name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("campaign %s: owner config map %s/%s: %w", camp, l.cfg.Namespace, want.Name, err)
	}
	l.owners[camp] = cm
	return cm, nil
}

func ownedBy(cm *corev1.ConfigMap) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID}}
}

// workerObjects are a worker's Secret and pod.
type workerObjects struct {
	secret *corev1.Secret
	pod    *corev1.Pod
}

// buildWorker makes a worker's objects (the pure function behind Launch).
// spec.Env's model keys are left out (on a cluster they come from
// Config.ModelSecret); its other entries go into the worker's Secret with
// the token.
func buildWorker(cfg Config, spec launch.Spec, camp, name string, owner []metav1.OwnerReference) workerObjects {
	lbl := objectLabels(camp, spec.Researcher, RoleWorker)
	meta := func() metav1.ObjectMeta {
		l := make(map[string]string, len(lbl))
		for k, v := range lbl {
			l[k] = v
		}
		return metav1.ObjectMeta{Name: name, Namespace: cfg.Namespace, Labels: l, OwnerReferences: owner}
	}
	secret := &corev1.Secret{ObjectMeta: meta(), Type: corev1.SecretTypeOpaque, Immutable: ptr.To(true),
		Data: map[string][]byte{TokenKey: []byte(spec.Token)}}
	fromSecret := func(env, secret, key string, optional bool) corev1.EnvVar {
		sel := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}
		if optional {
			sel.Optional = ptr.To(true)
		}
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: sel}}
	}
	field := func(env, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
	}
	env := []corev1.EnvVar{fromSecret(TokenKey, name, TokenKey, false)}
	seen := map[string]bool{TokenKey: true}
	for _, kv := range spec.Env {
		k, v, ok := cutEnv(kv)
		if !ok || seen[k] || slices.Contains(launch.ModelEnv, k) || k == "AAR_LAB" {
			continue
		}
		seen[k] = true
		secret.Data[k] = []byte(v)
		env = append(env, fromSecret(k, name, k, false))
	}
	if !spec.Proxied {
		for _, k := range launch.ModelEnv {
			env = append(env, fromSecret(k, cfg.ModelSecret, k, true))
		}
	}
	lit := func(k, v string) {
		if v != "" {
			env = append(env, corev1.EnvVar{Name: k, Value: v})
		}
	}
	lit(EnvNamespace, cfg.Namespace)
	lit(EnvImage, cfg.Image)
	lit(EnvImagePullPolicy, string(cfg.ImagePullPolicy))
	lit(EnvLabURL, cfg.LabURL)
	lit(EnvLabLabels, formatLabels(cfg.LabPodLabels))
	lit(EnvLabPort, strconv.Itoa(int(cfg.LabPort)))
	lit(EnvLabNamespace, cfg.LabNamespace)
	lit(EnvCampaign, labelValue(camp))
	lit(EnvResearcher, labelValue(spec.Researcher))
	if cfg.GPUs > 0 {
		lit(EnvGPUs, strconv.Itoa(cfg.GPUs))
	}
	lit(EnvGPUResource, string(cfg.GPUResource))
	lit(EnvRuntimeClass, cfg.RuntimeClassName)
	env = append(env, field(EnvOwnerPod, "metadata.name"), field(EnvOwnerUID, "metadata.uid"))
	lit("AAR_TERMINATION_LOG", "/dev/termination-log")
	lit("HOME", cfg.WorkerDataDir)
	lit("TMPDIR", tmpDir)
	lit("LANG", "C.UTF-8")

	args := append([]string(nil), spec.Args...)
	if !slices.Contains(args, "--sandbox") {
		args = append(args, "--sandbox", "kubernetes")
	}
	pod := &corev1.Pod{
		ObjectMeta: meta(),
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ServiceAccountName:            cfg.WorkerServiceAccount,
			AutomountServiceAccountToken:  ptr.To(true), // it makes sandboxes
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To(int64(cfg.WorkerGracePeriod / time.Second)),
			SecurityContext:               podSecurity(),
			Containers: []corev1.Container{{
				Name:                     ContainerWorker,
				Image:                    cfg.Image,
				ImagePullPolicy:          cfg.ImagePullPolicy,
				Command:                  []string{"/usr/local/bin/aar"},
				Args:                     args,
				Env:                      env,
				Resources:                cfg.WorkerResources,
				SecurityContext:          containerSecurity(SandboxUID),
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				VolumeMounts: []corev1.VolumeMount{
					{Name: "data", MountPath: cfg.WorkerDataDir},
					{Name: "tmp", MountPath: tmpDir},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
	return workerObjects{secret: secret, pod: pod}
}

func cutEnv(kv string) (k, v string, ok bool) {
	k, v, ok = strings.Cut(kv, "=")
	return k, v, ok && envName.MatchString(k)
}

// Launch implements launch.Launcher: it makes the campaign's owner (once),
// the worker's Secret and its pod, and returns at once; the worker's log
// lines reach log once the pod runs.
func (l *Launcher) Launch(ctx context.Context, spec launch.Spec, log io.Writer) (launch.Worker, error) {
	if l.ctx.Err() != nil {
		return nil, fmt.Errorf("start worker %s: the launcher was cleaned up", spec.Researcher)
	}
	camp := spec.Campaign
	if camp == "" {
		camp = l.cfg.Campaign
	}
	if camp == "" {
		return nil, fmt.Errorf("start worker %s: no campaign (WorkerSpec.Campaign or Config.Campaign)", spec.Researcher)
	}
	if spec.Token == "" {
		return nil, fmt.Errorf("start worker %s: no lab token", spec.Researcher)
	}
	cm, err := l.owner(ctx, camp)
	if err != nil {
		return nil, err
	}
	name := workerName(camp, spec.Researcher)
	objs := buildWorker(l.cfg, spec, camp, name, ownedBy(cm))
	ns := l.cfg.Namespace
	if _, err := l.client.CoreV1().Secrets(ns).Create(ctx, objs.secret, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("start worker %s: create secret %s/%s: %w", spec.Researcher, ns, name, err)
	}
	if _, err := l.client.CoreV1().Pods(ns).Create(ctx, objs.pod, metav1.CreateOptions{}); err != nil {
		if derr := l.client.CoreV1().Secrets(ns).Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{}); derr != nil && !apierrors.IsNotFound(derr) {
			l.cfg.Logger.Warn("remove a worker's secret", "secret", name, "err", derr)
		}
		return nil, fmt.Errorf("start worker %s: create pod %s/%s: %w", spec.Researcher, ns, name, err)
	}
	l.cfg.Logger.Info("worker pod created", "researcher", spec.Researcher, "namespace", ns, "pod", name)
	w := newPodWorker(l, name, spec.Researcher, log)
	return w, nil
}

// Cleanup removes every object of the campaigns this launcher started
// workers for (and of Config.Campaign): it deletes each campaign's owner
// ConfigMap (the cluster's garbage collector would take the rest) and,
// since a cluster without one (envtest) would keep them, every pod,
// Secret, NetworkPolicy and ConfigMap labelled with the campaign. Then it
// stops watching the workers: a Wait still blocked returns an error.
func (l *Launcher) Cleanup(ctx context.Context) error {
	l.mu.Lock()
	camps := map[string]bool{}
	for c := range l.owners {
		camps[c] = true
	}
	if l.cfg.Campaign != "" {
		camps[l.cfg.Campaign] = true
	}
	l.mu.Unlock()
	var errs []error
	for camp := range camps {
		errs = append(errs, l.cleanupCampaign(ctx, camp))
	}
	l.cancel()
	l.wg.Wait()
	return errors.Join(errs...)
}

func (l *Launcher) cleanupCampaign(ctx context.Context, camp string) error {
	ns := l.cfg.Namespace
	var errs []error
	check := func(what string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("campaign %s cleanup: %s: %w", camp, what, err))
		}
	}
	bg := metav1.DeletePropagationBackground
	check("delete owner", l.client.CoreV1().ConfigMaps(ns).Delete(ctx, campaignOwnerName(camp), metav1.DeleteOptions{PropagationPolicy: &bg}))
	sel := metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy, LabelCampaign: labelValue(camp)}).String()}
	// Pods first (a 1 s grace period: not a force delete, so each stays
	// until the kubelet has killed it), and their NetworkPolicies only once
	// they are gone: no sandbox process ever runs unfenced.
	check("delete pods", l.client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1), PropagationPolicy: &bg}, sel))
	wctx, cancel := context.WithTimeout(ctx, destroyWait)
	err := waitNoPods(wctx, l.client, ns, sel.LabelSelector)
	cancel()
	if err != nil {
		errs = append(errs, fmt.Errorf("campaign %s cleanup: pods still there (%w): their network policies stay; clean up again", camp, err))
	} else {
		check("delete network policies", l.client.NetworkingV1().NetworkPolicies(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel))
	}
	check("delete secrets", l.client.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel))
	check("delete config maps", l.client.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, sel))
	l.mu.Lock()
	delete(l.owners, camp)
	l.mu.Unlock()
	return errors.Join(errs...)
}
