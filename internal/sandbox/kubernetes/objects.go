package kubernetes

import (
	"math"
	"strconv"

	"github.com/aar-lab/aar/internal/sandbox"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The uids sandbox and worker processes run as: SandboxUID for the
// researcher's commands (and workers), FilesUID for the "files" container,
// the only writer of /data and /shared.
const (
	SandboxUID = 1000
	FilesUID   = 2000
)

// The sandbox pod's containers and the paths inside them.
const (
	ContainerSandbox = "sandbox"
	ContainerFiles   = "files"
	ContainerWorker  = "worker"

	workspaceDir = "/workspace"
	dataDir      = "/data"
	sharedDir    = "/shared"
	tmpDir       = "/tmp"
)

// TokenKey is the key of the lab token in the Secrets this package makes.
const TokenKey = "AAR_TOKEN"

// sandboxPath is PATH inside a sandbox.
const sandboxPath = "/usr/local/bin:/usr/bin:/bin"

// podSecurity is the pod-level security context of sandboxes and workers:
// never root, uid/gid/fsGroup 1000, the runtime's default seccomp profile.
func podSecurity() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](SandboxUID),
		RunAsGroup:     ptr.To[int64](SandboxUID),
		FSGroup:        ptr.To[int64](SandboxUID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// containerSecurity is every container's security context: uid, no
// privilege, no escalation, no capability, a read-only root.
func containerSecurity(uid int64) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(uid),
		RunAsGroup:               ptr.To(uid),
		Privileged:               ptr.To(false),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func owners(o *metav1.OwnerReference) []metav1.OwnerReference {
	if o == nil {
		return nil
	}
	return []metav1.OwnerReference{*o}
}

// sandboxObjects are what Create makes for one sandbox, in the order it
// makes them.
type sandboxObjects struct {
	policy *networkingv1.NetworkPolicy
	secret *corev1.Secret
	pod    *corev1.Pod
}

// lifetimeSeconds is a lifetime in whole seconds, at least 1.
func lifetimeSeconds(d sandbox.Limits) int64 {
	return max(1, int64(math.Ceil(d.Lifetime.Seconds())))
}

// cpuQuantity turns a CPU share (1024 = one CPU) into a CPU quantity, at
// least 10 millicores.
func cpuQuantity(shares int) resource.Quantity {
	return *resource.NewMilliQuantity(max(10, int64(shares)*1000/1024), resource.DecimalSI)
}

func bytesQuantity(n int64) resource.Quantity {
	return *resource.NewQuantity(n, resource.BinarySI)
}

// Room each container's ephemeral storage has beyond its volumes: its
// log and what the runtime keeps of it.
const ephemeralSlack = 64 << 20

// buildSandbox makes the objects of one sandbox. lab says whether the
// sandbox reaches the lab (spec.LabSocket set), dataBytes is the size of
// spec.Data (bounding /data). The pure function behind Create, tested
// field by field.
func buildSandbox(cfg Config, spec sandbox.Spec, lim sandbox.Limits, lab bool, dataBytes int64) sandboxObjects {
	name := sandboxName(spec.ID)
	researcher := cfg.Researcher
	if researcher == "" {
		researcher = researcherFromID(spec.ID, cfg.Campaign)
	}
	labels := objectLabels(cfg.Campaign, researcher, RoleSandbox)
	labels[LabelSandbox] = labelValue(spec.ID)
	meta := func() metav1.ObjectMeta {
		l := make(map[string]string, len(labels))
		for k, v := range labels {
			l[k] = v
		}
		return metav1.ObjectMeta{Name: name, Namespace: cfg.Namespace, Labels: l, OwnerReferences: owners(cfg.Owner)}
	}
	selector := metav1.LabelSelector{MatchLabels: map[string]string{LabelSandbox: labels[LabelSandbox], LabelRole: RoleSandbox}}

	// No ingress at all; egress to nothing, or to the lab and DNS.
	policy := &networkingv1.NetworkPolicy{
		ObjectMeta: meta(),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: selector,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{},
			Egress:      []networkingv1.NetworkPolicyEgressRule{},
		},
	}
	if lab {
		peer := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: cfg.LabPodLabels}}
		if cfg.LabNamespace != "" && cfg.LabNamespace != cfg.Namespace {
			peer.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": cfg.LabNamespace}}
		}
		tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
		policy.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{
			{
				To:    []networkingv1.NetworkPolicyPeer{peer},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(cfg.LabPort))}},
			},
			{
				To: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
				}},
				Ports: []networkingv1.NetworkPolicyPort{
					{Protocol: &udp, Port: ptr.To(intstr.FromInt32(53))},
					{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(53))},
				},
			},
		}
	}

	secret := &corev1.Secret{ObjectMeta: meta(), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{}, Immutable: ptr.To(true)}
	if lab {
		secret.Data[TokenKey] = []byte(cfg.Token)
	}

	life := strconv.FormatInt(lifetimeSeconds(lim), 10)
	env := []corev1.EnvVar{
		{Name: "PATH", Value: sandboxPath},
		{Name: "HOME", Value: workspaceDir},
		{Name: "LANG", Value: "C.UTF-8"},
		{Name: "TMPDIR", Value: tmpDir},
	}
	if lab {
		env = append(env,
			corev1.EnvVar{Name: "AAR_LAB", Value: cfg.LabURL},
			corev1.EnvVar{Name: TokenKey, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: TokenKey}}})
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:              cpuQuantity(lim.CPUShares),
		corev1.ResourceMemory:           bytesQuantity(lim.MemoryBytes),
		corev1.ResourceEphemeralStorage: bytesQuantity(lim.WorkspaceBytes + ephemeralSlack),
	}
	if cfg.GPUs > 0 {
		res[cfg.GPUResource] = *resource.NewQuantity(int64(cfg.GPUs), resource.DecimalSI)
	}
	box := corev1.Container{
		Name:            ContainerSandbox,
		Image:           cfg.Image,
		ImagePullPolicy: cfg.ImagePullPolicy,
		// Something that only waits: commands come through exec.
		Command:         []string{"sleep", life},
		WorkingDir:      workspaceDir,
		Env:             env,
		Resources:       corev1.ResourceRequirements{Requests: res, Limits: res.DeepCopy()},
		SecurityContext: containerSecurity(SandboxUID),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "workspace", MountPath: workspaceDir},
			{Name: "tmp", MountPath: tmpDir},
		},
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
	vols := []corev1.Volume{
		{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(bytesQuantity(lim.WorkspaceBytes))}}},
		// Memory-backed: what /tmp holds counts against the pod's memory.
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(bytesQuantity(lim.TmpBytes))}}},
	}
	containers := []corev1.Container{box}
	if spec.Data != "" || spec.Shared != "" {
		// /data and /shared are read-only to the researcher's commands;
		// only "files", under another uid and never running their
		// commands, writes them.
		files := corev1.Container{
			Name:            ContainerFiles,
			Image:           cfg.Image,
			ImagePullPolicy: cfg.ImagePullPolicy,
			Command:         []string{"sleep", life},
			WorkingDir:      tmpDir,
			Env:             []corev1.EnvVar{{Name: "PATH", Value: sandboxPath}, {Name: "LANG", Value: "C.UTF-8"}},
			SecurityContext: containerSecurity(FilesUID),
			VolumeMounts:    []corev1.VolumeMount{{Name: "files-tmp", MountPath: tmpDir}},
		}
		var storage int64 = ephemeralSlack
		vols = append(vols, corev1.Volume{Name: "files-tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(bytesQuantity(16 << 20))}}})
		add := func(vol, path string, size int64) {
			vols = append(vols, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(bytesQuantity(size))}}})
			containers[0].VolumeMounts = append(containers[0].VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: path, ReadOnly: true})
			files.VolumeMounts = append(files.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: path})
			storage += size
		}
		if spec.Data != "" {
			// Room for the view plus what tar and the file system add.
			add("data", dataDir, dataBytes+dataBytes/8+(16<<20))
		}
		if spec.Shared != "" {
			add("shared", sharedDir, cfg.SharedBytes)
		}
		fr := corev1.ResourceList{
			corev1.ResourceCPU:              resource.MustParse("100m"),
			corev1.ResourceMemory:           resource.MustParse("128Mi"),
			corev1.ResourceEphemeralStorage: bytesQuantity(storage),
		}
		files.Resources = corev1.ResourceRequirements{Requests: fr, Limits: fr.DeepCopy()}
		containers = append(containers, files)
	}

	pod := &corev1.Pod{
		ObjectMeta: meta(),
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         ptr.To(lifetimeSeconds(lim)),
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			HostNetwork:                   false,
			HostPID:                       false,
			HostIPC:                       false,
			ShareProcessNamespace:         ptr.To(false),
			Hostname:                      "aar",
			SecurityContext:               podSecurity(),
			Containers:                    containers,
			Volumes:                       vols,
		},
	}
	if cfg.RuntimeClassName != "" {
		pod.Spec.RuntimeClassName = ptr.To(cfg.RuntimeClassName)
	}
	return sandboxObjects{policy: policy, secret: secret, pod: pod}
}
