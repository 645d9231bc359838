package kubernetes

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Config says where and how sandboxes and workers run. The sandbox fields
// travel to a worker pod as AAR_KUBE_* variables (see FromEnv); the worker
// fields matter only to the Launcher.
type Config struct {
	// Namespace holds every object this package makes.
	Namespace string `json:"namespace"`
	// Image is the sandbox and worker image: /usr/local/bin/aar, a shell,
	// coreutils (timeout, base64, head), tar and python3.
	Image           string            `json:"image"`
	ImagePullPolicy corev1.PullPolicy `json:"image_pull_policy,omitempty"`

	// LabURL is the lab's in-cluster URL, given to sandboxes that need the
	// lab (agent-cli) as AAR_LAB. LabPodLabels select the lab's pods and
	// LabPort is their container port (not the Service's): the only egress
	// such a sandbox's NetworkPolicy allows besides cluster DNS.
	// LabNamespace is where the lab's pods run ("" means Namespace).
	LabURL       string            `json:"lab_url,omitempty"`
	LabPodLabels map[string]string `json:"lab_pod_labels,omitempty"`
	LabPort      int32             `json:"lab_port,omitempty"`
	LabNamespace string            `json:"lab_namespace,omitempty"`
	// Token is the researcher's lab token, needed only by sandboxes that
	// reach the lab (Spec.LabSocket set): it goes into the sandbox's Secret
	// and from there into the pod's AAR_TOKEN, never into a pod spec. It
	// is never read from the environment by FromEnv; the worker sets it.
	Token string `json:"-"`

	// Campaign and Researcher label every object (aar.dev/campaign,
	// aar.dev/researcher); Researcher defaults to the name in the
	// sandbox's ID.
	Campaign   string `json:"campaign,omitempty"`
	Researcher string `json:"researcher,omitempty"`
	// Owner, when set (a worker's own pod), owns every sandbox object, so
	// the cluster's garbage collector removes them with it.
	Owner *metav1.OwnerReference `json:"owner,omitempty"`

	// GPUs is the count of GPUResource each sandbox requests (and is
	// limited to); RuntimeClassName picks the sandbox pods' runtime (e.g.
	// gvisor) when set.
	GPUs             int                 `json:"gpus,omitempty"`
	GPUResource      corev1.ResourceName `json:"gpu_resource,omitempty"`
	RuntimeClassName string              `json:"runtime_class_name,omitempty"`
	// SharedBytes bounds /shared, the forum's copy.
	SharedBytes int64 `json:"shared_bytes,omitempty"`
	// StartTimeout bounds how long Create waits for the pod to run when
	// its ctx has no deadline of its own (pulling a large image takes a
	// while).
	StartTimeout time.Duration `json:"start_timeout,omitempty"`

	// ModelSecret names the user's Secret with model keys (keys
	// ANTHROPIC_API_KEY, OPENAI_API_KEY, ANTHROPIC_BASE_URL,
	// OPENAI_BASE_URL, each optional); proxied workers get none.
	ModelSecret string `json:"model_secret,omitempty"`
	// WorkerServiceAccount is the workers' service account: one allowed
	// to make sandboxes (see SandboxRules).
	WorkerServiceAccount string `json:"worker_service_account,omitempty"`
	// WorkerResources are a worker pod's requests and limits.
	WorkerResources corev1.ResourceRequirements `json:"worker_resources"`
	// WorkerDataDir is where a worker pod's --data directory (an
	// emptyDir) is mounted: pass it to the worker as --data.
	WorkerDataDir string `json:"worker_data_dir,omitempty"`
	// WorkerGracePeriod is how long a stopped worker has to finish its
	// call after SIGTERM.
	WorkerGracePeriod time.Duration `json:"worker_grace_period,omitempty"`

	// Logger gets this package's own log lines (nil: none).
	Logger *slog.Logger `json:"-"`
}

// The defaults DefaultConfig fills in.
const (
	DefaultNamespace            = "aar"
	DefaultLabURL               = "http://aar-lab.aar.svc:8420"
	DefaultLabPort              = 8420
	DefaultGPUResource          = "nvidia.com/gpu"
	DefaultModelSecret          = "aar-model-keys"
	DefaultWorkerServiceAccount = "aar-worker"
	DefaultWorkerDataDir        = "/var/lib/aar"
)

// DefaultConfig is a Config with every default filled in but Image, which
// has none.
func DefaultConfig() Config {
	return Config{
		Namespace:            DefaultNamespace,
		ImagePullPolicy:      corev1.PullIfNotPresent,
		LabURL:               DefaultLabURL,
		LabPodLabels:         map[string]string{"app.kubernetes.io/name": "aar-lab"},
		LabPort:              DefaultLabPort,
		GPUResource:          DefaultGPUResource,
		SharedBytes:          1 << 30,
		StartTimeout:         10 * time.Minute,
		ModelSecret:          DefaultModelSecret,
		WorkerServiceAccount: DefaultWorkerServiceAccount,
		WorkerDataDir:        DefaultWorkerDataDir,
		WorkerGracePeriod:    time.Minute,
		WorkerResources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
	}
}

// withDefaults fills the zero fields a Config built by hand leaves empty.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = d.ImagePullPolicy
	}
	if c.LabPodLabels == nil {
		c.LabPodLabels = d.LabPodLabels
	}
	if c.LabPort == 0 {
		c.LabPort = d.LabPort
	}
	if c.GPUResource == "" {
		c.GPUResource = d.GPUResource
	}
	if c.SharedBytes <= 0 {
		c.SharedBytes = d.SharedBytes
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = d.StartTimeout
	}
	if c.ModelSecret == "" {
		c.ModelSecret = d.ModelSecret
	}
	if c.WorkerServiceAccount == "" {
		c.WorkerServiceAccount = d.WorkerServiceAccount
	}
	if c.WorkerDataDir == "" {
		c.WorkerDataDir = d.WorkerDataDir
	}
	if c.WorkerGracePeriod <= 0 {
		c.WorkerGracePeriod = d.WorkerGracePeriod
	}
	if c.WorkerResources.Requests == nil && c.WorkerResources.Limits == nil {
		c.WorkerResources = d.WorkerResources
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Validate checks a Config; the error names the field, what is wrong and
// how to fix it. Fields a Config built by hand leaves zero take
// DefaultConfig's values first.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("kubernetes config %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Namespace == "" {
		bad("Namespace", "is empty; set AAR_KUBE_NAMESPACE (e.g. %s)", DefaultNamespace)
	} else if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		bad("Namespace", "%q is not a namespace name: %s", c.Namespace, strings.Join(msgs, "; "))
	}
	if c.Image == "" {
		bad("Image", "is empty; set AAR_KUBE_IMAGE to an image with /usr/local/bin/aar, a shell, coreutils, tar and python3")
	} else if strings.ContainsAny(c.Image, " \t\n") {
		bad("Image", "%q holds white space; give an image reference such as registry.example/aar:v1", c.Image)
	}
	switch c.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		bad("ImagePullPolicy", "%q: use Always, IfNotPresent or Never", c.ImagePullPolicy)
	}
	if c.LabURL != "" {
		if u, err := url.Parse(c.LabURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("LabURL", "%q: give the lab's in-cluster URL, e.g. %s", c.LabURL, DefaultLabURL)
		}
	}
	if len(c.LabPodLabels) == 0 {
		bad("LabPodLabels", "is empty; give the labels of the lab's pods (e.g. app.kubernetes.io/name=aar-lab)")
	}
	for k, v := range c.LabPodLabels {
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			bad("LabPodLabels", "key %q: %s", k, strings.Join(msgs, "; "))
		}
		if msgs := content.IsLabelValue(v); len(msgs) > 0 {
			bad("LabPodLabels", "value %q of %s: %s", v, k, strings.Join(msgs, "; "))
		}
	}
	if c.LabPort < 1 || c.LabPort > 65535 {
		bad("LabPort", "%d: give the lab pods' container port (1-65535), e.g. %d", c.LabPort, DefaultLabPort)
	}
	if c.LabNamespace != "" {
		if msgs := validation.IsDNS1123Label(c.LabNamespace); len(msgs) > 0 {
			bad("LabNamespace", "%q is not a namespace name: %s", c.LabNamespace, strings.Join(msgs, "; "))
		}
	}
	if c.Campaign != "" && labelValue(c.Campaign) != c.Campaign {
		bad("Campaign", "%q is not a label value: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", c.Campaign)
	}
	if c.Researcher != "" && labelValue(c.Researcher) != c.Researcher {
		bad("Researcher", "%q is not a label value: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", c.Researcher)
	}
	if o := c.Owner; o != nil && (o.APIVersion == "" || o.Kind == "" || o.Name == "" || o.UID == "") {
		bad("Owner", "needs apiVersion, kind, name and uid (a worker pod gets them from AAR_KUBE_OWNER_POD and AAR_KUBE_OWNER_UID through the downward API)")
	}
	if c.GPUs < 0 {
		bad("GPUs", "%d: give a count of 0 or more", c.GPUs)
	}
	if msgs := content.IsLabelKey(string(c.GPUResource)); len(msgs) > 0 || !strings.Contains(string(c.GPUResource), "/") {
		bad("GPUResource", "%q: give an extended resource name such as %s", c.GPUResource, DefaultGPUResource)
	}
	if c.RuntimeClassName != "" {
		if msgs := validation.IsDNS1123Subdomain(c.RuntimeClassName); len(msgs) > 0 {
			bad("RuntimeClassName", "%q: %s", c.RuntimeClassName, strings.Join(msgs, "; "))
		}
	}
	for field, name := range map[string]string{"ModelSecret": c.ModelSecret, "WorkerServiceAccount": c.WorkerServiceAccount} {
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			bad(field, "%q is not an object name: %s", name, strings.Join(msgs, "; "))
		}
	}
	if !strings.HasPrefix(c.WorkerDataDir, "/") {
		bad("WorkerDataDir", "%q: give an absolute path such as %s", c.WorkerDataDir, DefaultWorkerDataDir)
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// The environment a worker pod gets (see Launcher) and FromEnv reads.
const (
	EnvNamespace       = "AAR_KUBE_NAMESPACE"
	EnvImage           = "AAR_KUBE_IMAGE"
	EnvImagePullPolicy = "AAR_KUBE_IMAGE_PULL_POLICY"
	EnvLabURL          = "AAR_KUBE_LAB_URL"
	EnvLabLabels       = "AAR_KUBE_LAB_LABELS" // k=v,k=v
	EnvLabPort         = "AAR_KUBE_LAB_PORT"
	EnvLabNamespace    = "AAR_KUBE_LAB_NAMESPACE"
	EnvCampaign        = "AAR_KUBE_CAMPAIGN"
	EnvResearcher      = "AAR_KUBE_RESEARCHER"
	EnvOwnerPod        = "AAR_KUBE_OWNER_POD" // downward API: metadata.name
	EnvOwnerUID        = "AAR_KUBE_OWNER_UID" // downward API: metadata.uid
	EnvGPUs            = "AAR_KUBE_GPUS"
	EnvGPUResource     = "AAR_KUBE_GPU_RESOURCE"
	EnvRuntimeClass    = "AAR_KUBE_RUNTIME_CLASS"
)

// FromEnv is DefaultConfig overlaid with the AAR_KUBE_* variables a worker
// pod gets from its Launcher, owned by the worker's own pod when
// AAR_KUBE_OWNER_POD and AAR_KUBE_OWNER_UID are set. It does not read the
// token: set Config.Token. The result is validated.
func FromEnv() (Config, error) { return fromEnv(os.LookupEnv) }

// OverlayEnv sets c's fields from the AAR_KUBE_* variables that are set,
// without validating (aar run overlays its flags on top).
func OverlayEnv(c Config) (Config, error) { return overlayEnv(c, os.LookupEnv) }

func fromEnv(lookup func(string) (string, bool)) (Config, error) {
	c, err := overlayEnv(DefaultConfig(), lookup)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func overlayEnv(c Config, lookup func(string) (string, bool)) (Config, error) {
	val := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	set := func(dst *string, k string) {
		if v := val(k); v != "" {
			*dst = v
		}
	}
	set(&c.Namespace, EnvNamespace)
	set(&c.Image, EnvImage)
	set(&c.LabURL, EnvLabURL)
	set(&c.LabNamespace, EnvLabNamespace)
	set(&c.Campaign, EnvCampaign)
	set(&c.Researcher, EnvResearcher)
	set(&c.RuntimeClassName, EnvRuntimeClass)
	if v := val(EnvImagePullPolicy); v != "" {
		c.ImagePullPolicy = corev1.PullPolicy(v)
	}
	if v := val(EnvGPUResource); v != "" {
		c.GPUResource = corev1.ResourceName(v)
	}
	if v := val(EnvLabLabels); v != "" {
		labels, err := parseLabels(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvLabLabels, err)
		}
		c.LabPodLabels = labels
	}
	if v := val(EnvLabPort); v != "" {
		p, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return Config{}, fmt.Errorf("%s %q: give a port number", EnvLabPort, v)
		}
		c.LabPort = int32(p)
	}
	if v := val(EnvGPUs); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s %q: give a count", EnvGPUs, v)
		}
		c.GPUs = n
	}
	pod, uid := val(EnvOwnerPod), val(EnvOwnerUID)
	switch {
	case pod != "" && uid != "":
		c.Owner = &metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod, UID: types.UID(uid)}
	case pod != "" || uid != "":
		return Config{}, fmt.Errorf("set both %s and %s (the worker pod's metadata.name and metadata.uid) or neither", EnvOwnerPod, EnvOwnerUID)
	}
	return c, nil
}

// parseLabels reads k=v,k=v.
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: give labels as key=value,key=value", s)
		}
		out[k] = v
	}
	return out, nil
}

// formatLabels writes k=v,k=v in key order.
func formatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// NewClient connects to a cluster: the kubeconfig file named, or with ""
// client-go's default loading rules (KUBECONFIG, ~/.kube/config) and, when
// those find nothing and this runs in a pod, the pod's service account.
func NewClient(kubeconfig string) (*rest.Config, kubernetes.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client config (kubeconfig %q, KUBECONFIG, ~/.kube/config or in-cluster): %w", kubeconfig, err)
	}
	// A campaign of many researchers makes many calls at once.
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 50, 100
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return rc, cs, nil
}
