package kubernetes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Image = "registry.example/aar:v1"
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config with an image: %v", err)
	}
	// A Config built by hand takes the defaults it leaves out.
	if err := (Config{Namespace: "x", Image: "img"}).Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
		fix   string
	}{
		{"no image", func(c *Config) { c.Image = "" }, "Image", "AAR_KUBE_IMAGE"},
		{"no namespace", func(c *Config) { c.Namespace = "" }, "Namespace", "AAR_KUBE_NAMESPACE"},
		{"bad namespace", func(c *Config) { c.Namespace = "Not_A_Name" }, "Namespace", "not a namespace name"},
		{"pull policy", func(c *Config) { c.ImagePullPolicy = "Sometimes" }, "ImagePullPolicy", "IfNotPresent"},
		{"lab url", func(c *Config) { c.LabURL = "unix:///run/lab.sock" }, "LabURL", "in-cluster URL"},
		{"lab port", func(c *Config) { c.LabPort = 70000 }, "LabPort", "container port"},
		{"lab labels", func(c *Config) { c.LabPodLabels = map[string]string{} }, "LabPodLabels", "app.kubernetes.io/name"},
		{"lab label value", func(c *Config) { c.LabPodLabels = map[string]string{"app": "bad value"} }, "LabPodLabels", "value"},
		{"campaign", func(c *Config) { c.Campaign = "has space" }, "Campaign", "label value"},
		{"owner", func(c *Config) { c.Owner = &metav1.OwnerReference{Kind: "Pod", Name: "x"} }, "Owner", "AAR_KUBE_OWNER_UID"},
		{"gpus", func(c *Config) { c.GPUs = -1 }, "GPUs", "0 or more"},
		{"gpu resource", func(c *Config) { c.GPUResource = "gpu" }, "GPUResource", "nvidia.com/gpu"},
		{"runtime class", func(c *Config) { c.RuntimeClassName = "Bad Class" }, "RuntimeClassName", ""},
		{"model secret", func(c *Config) { c.ModelSecret = "Keys!" }, "ModelSecret", "object name"},
		{"data dir", func(c *Config) { c.WorkerDataDir = "data" }, "WorkerDataDir", "absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "kubernetes config "+tc.field+":") || !strings.Contains(err.Error(), tc.fix) {
				t.Fatalf("error %q: want it to name %s and say %q", err, tc.field, tc.fix)
			}
		})
	}
	if _, err := NewBackend(Config{Namespace: "x"}, nil, nil); err == nil || !strings.Contains(err.Error(), "Image") {
		t.Fatalf("NewBackend without an image: %v", err)
	}
	if _, err := NewBackend(ok, nil, nil); err == nil || !strings.Contains(err.Error(), "NewClient") {
		t.Fatalf("NewBackend without a client: %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		EnvNamespace: "research", EnvImage: "registry.example/aar:v2", EnvImagePullPolicy: "Always",
		EnvLabURL: "http://lab.research.svc:9000", EnvLabLabels: "app=lab, tier=api", EnvLabPort: "9000", EnvLabNamespace: "labs",
		EnvCampaign: "c-1", EnvResearcher: "alice", EnvOwnerPod: "aar-c-1-alice-abc", EnvOwnerUID: "uid-1",
		EnvGPUs: "2", EnvGPUResource: "amd.com/gpu", EnvRuntimeClass: "gvisor",
		"AAR_TOKEN": testToken,
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := fromEnv(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "research" || c.Image != "registry.example/aar:v2" || c.ImagePullPolicy != "Always" || c.LabURL != "http://lab.research.svc:9000" ||
		c.LabPodLabels["app"] != "lab" || c.LabPodLabels["tier"] != "api" || c.LabPort != 9000 || c.LabNamespace != "labs" ||
		c.Campaign != "c-1" || c.Researcher != "alice" || c.GPUs != 2 || c.GPUResource != "amd.com/gpu" || c.RuntimeClassName != "gvisor" {
		t.Fatalf("FromEnv: %+v", c)
	}
	if o := c.Owner; o == nil || o.APIVersion != "v1" || o.Kind != "Pod" || o.Name != "aar-c-1-alice-abc" || o.UID != "uid-1" {
		t.Fatalf("owner %+v", c.Owner)
	}
	if c.Token != "" {
		t.Fatal("FromEnv read the token")
	}
	for k, v := range map[string]string{EnvLabPort: "http", EnvGPUs: "many", EnvLabLabels: "novalue", EnvOwnerUID: ""} {
		bad := map[string]string{}
		for kk, vv := range env {
			bad[kk] = vv
		}
		bad[k] = v
		if _, err := fromEnv(func(k string) (string, bool) { v, ok := bad[k]; return v, ok }); err == nil || !strings.Contains(err.Error(), "AAR_KUBE_") {
			t.Errorf("%s=%q: %v", k, v, err)
		}
	}
	if _, err := fromEnv(func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "Image") {
		t.Errorf("empty environment: %v", err)
	}
}

func TestNewClientKubeconfig(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u, namespace: research}
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, cs, err := NewClient(kc)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://127.0.0.1:6443" || cs == nil || rc.QPS != 50 {
		t.Fatalf("config %s qps %v", rc.Host, rc.QPS)
	}
	if _, _, err := NewClient(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing kubeconfig: no error")
	}
}
