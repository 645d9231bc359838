package kubernetes_test

// A renderer for the subset of Kustomize that aar's manifests use, so the
// tests need no kustomize binary. Supported, with kustomize's meaning:
//
//   - resources: files (multi-document YAML) and directories holding a
//     kustomization.yaml, rendered recursively;
//   - secretGenerator: envs and literals, behavior create (default), merge
//     or replace, options.labels; options.disableNameSuffixHash must be true
//     (name hashes and the reference rewriting they need are not
//     implemented);
//   - patches: strategic-merge patches given by path or inline, targeted by
//     the patch's own apiVersion, kind and name (no target selector, no
//     JSON 6902);
//   - namespace: set on every namespaced object, Namespace objects renamed to
//     it, and RoleBinding subjects naming a ServiceAccount of the same build
//     moved with it (kustomize's name-reference rule, see setNamespace);
//   - labels: pairs added to metadata.labels and, with includeTemplates, to
//     pod templates and StatefulSet claim templates; includeSelectors must
//     be false;
//   - images: name → newName, newTag, digest on containers and init
//     containers of pods and pod templates.
//
// Transformers run in kustomize's order: generators, patches, namespace,
// labels, images. A kustomization with any other field fails to decode, so a
// manifest change that needs more of Kustomize fails the tests until the
// renderer learns it.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize.config.k8s.io/v1beta1 Kustomization
// that render understands.
type kustomization struct {
	APIVersion      string        `json:"apiVersion"`
	Kind            string        `json:"kind"`
	Namespace       string        `json:"namespace,omitempty"`
	Resources       []string      `json:"resources,omitempty"`
	Labels          []labelsEntry `json:"labels,omitempty"`
	Images          []imageEntry  `json:"images,omitempty"`
	Patches         []patchEntry  `json:"patches,omitempty"`
	SecretGenerator []secretEntry `json:"secretGenerator,omitempty"`
}

type labelsEntry struct {
	Pairs            map[string]string `json:"pairs"`
	IncludeSelectors bool              `json:"includeSelectors,omitempty"`
	IncludeTemplates bool              `json:"includeTemplates,omitempty"`
}

type imageEntry struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

type patchEntry struct {
	Path  string `json:"path,omitempty"`
	Patch string `json:"patch,omitempty"`
}

type secretEntry struct {
	Name     string   `json:"name"`
	Behavior string   `json:"behavior,omitempty"`
	Type     string   `json:"type,omitempty"`
	Envs     []string `json:"envs,omitempty"`
	Literals []string `json:"literals,omitempty"`
	Options  *struct {
		DisableNameSuffixHash bool              `json:"disableNameSuffixHash,omitempty"`
		Labels                map[string]string `json:"labels,omitempty"`
	} `json:"options,omitempty"`
}

// render builds the kustomization in dir of fsys (slash-separated paths).
func render(fsys fs.FS, dir string) ([]*unstructured.Unstructured, error) {
	return renderDepth(fsys, path.Clean(dir), 0)
}

func renderDepth(fsys fs.FS, dir string, depth int) ([]*unstructured.Unstructured, error) {
	if depth > 8 {
		return nil, fmt.Errorf("kustomization %s: bases nested more than 8 deep (a cycle?)", dir)
	}
	file := path.Join(dir, "kustomization.yaml")
	raw, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, err
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		return nil, fmt.Errorf("%s: %w (the test renderer supports only the fields in kustomize_test.go)", file, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return nil, fmt.Errorf("%s: apiVersion/kind %s/%s, want kustomize.config.k8s.io/v1beta1/Kustomization", file, k.APIVersion, k.Kind)
	}

	var objs []*unstructured.Unstructured
	for _, r := range k.Resources {
		p := path.Join(dir, r)
		st, err := fs.Stat(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("%s: resource %s: %w", file, r, err)
		}
		var more []*unstructured.Unstructured
		if st.IsDir() {
			more, err = renderDepth(fsys, p, depth+1)
		} else {
			more, err = readObjects(fsys, p)
		}
		if err != nil {
			return nil, err
		}
		objs = append(objs, more...)
	}
	if objs, err = generateSecrets(fsys, dir, k.SecretGenerator, objs); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := checkUnique(objs); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, p := range k.Patches {
		if err := applyPatch(fsys, dir, p, objs); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	if k.Namespace != "" {
		setNamespace(objs, k.Namespace)
	}
	for _, l := range k.Labels {
		if l.IncludeSelectors {
			return nil, fmt.Errorf("%s: labels with includeSelectors: true are not supported (selectors are immutable; keep them out of kustomize)", file)
		}
		addLabels(objs, l.Pairs, l.IncludeTemplates)
	}
	for _, im := range k.Images {
		if err := setImage(objs, im); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	return objs, nil
}

// readObjects reads every non-empty YAML document of a file. Duplicate keys
// are errors.
func readObjects(fsys fs.FS, p string) ([]*unstructured.Unstructured, error) {
	raw, err := fs.ReadFile(fsys, p)
	if err != nil {
		return nil, err
	}
	docs, err := splitYAML(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var out []*unstructured.Unstructured
	for i, doc := range docs {
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", p, i+1, err)
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", p, i+1, err)
		}
		if u.GetName() == "" && u.GetGenerateName() == "" {
			return nil, fmt.Errorf("%s: document %d (%s): no metadata.name", p, i+1, u.GetKind())
		}
		out = append(out, u)
	}
	return out, nil
}

func splitYAML(raw []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
}

// id is an object's identity for conflicts and patch targets: group, kind
// and name (namespaces are all set later by the namespace transformer).
func id(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	return gvk.Group + "/" + gvk.Kind + "/" + u.GetName()
}

func checkUnique(objs []*unstructured.Unstructured) error {
	seen := map[string]bool{}
	for _, u := range objs {
		if seen[id(u)] {
			return fmt.Errorf("two objects %s", id(u))
		}
		seen[id(u)] = true
	}
	return nil
}

func generateSecrets(fsys fs.FS, dir string, gens []secretEntry, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	for _, g := range gens {
		if g.Options == nil || !g.Options.DisableNameSuffixHash {
			return nil, fmt.Errorf("secretGenerator %s: set options.disableNameSuffixHash: true (name hashes are not implemented by the test renderer)", g.Name)
		}
		data := map[string]string{}
		add := func(kv, where string) error {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("secretGenerator %s: %s: %q is not KEY=VALUE", g.Name, where, kv)
			}
			if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
				return fmt.Errorf("secretGenerator %s: %s: key %q: %s", g.Name, where, k, strings.Join(errs, "; "))
			}
			if _, dup := data[k]; dup {
				return fmt.Errorf("secretGenerator %s: %s: key %q twice", g.Name, where, k)
			}
			data[k] = base64.StdEncoding.EncodeToString([]byte(v))
			return nil
		}
		for _, e := range g.Envs {
			raw, err := fs.ReadFile(fsys, path.Join(dir, e))
			if err != nil {
				return nil, fmt.Errorf("secretGenerator %s: %w", g.Name, err)
			}
			for n, line := range strings.Split(string(raw), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				if err := add(line, fmt.Sprintf("%s:%d", e, n+1)); err != nil {
					return nil, err
				}
			}
		}
		for _, l := range g.Literals {
			if err := add(l, "literals"); err != nil {
				return nil, err
			}
		}
		var existing *unstructured.Unstructured
		for _, u := range objs {
			if u.GetKind() == "Secret" && u.GetAPIVersion() == "v1" && u.GetName() == g.Name {
				existing = u
			}
		}
		switch g.Behavior {
		case "", "create":
			if existing != nil {
				return nil, fmt.Errorf("secretGenerator %s: a Secret of that name exists already (use behavior: merge or replace)", g.Name)
			}
			typ := g.Type
			if typ == "" {
				typ = "Opaque"
			}
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "v1", "kind": "Secret", "type": typ,
				"metadata": map[string]any{"name": g.Name},
				"data":     toAny(data),
			}}
			if len(g.Options.Labels) > 0 {
				u.SetLabels(g.Options.Labels)
			}
			objs = append(objs, u)
		case "merge", "replace":
			if existing == nil {
				return nil, fmt.Errorf("secretGenerator %s: behavior %s but no Secret of that name in the resources", g.Name, g.Behavior)
			}
			merged := map[string]any{}
			if old, ok := existing.Object["data"].(map[string]any); ok && g.Behavior == "merge" {
				for k, v := range old {
					merged[k] = v
				}
			}
			for k, v := range data {
				merged[k] = v
			}
			existing.Object["data"] = merged
			if len(g.Options.Labels) > 0 {
				labels := existing.GetLabels()
				if labels == nil {
					labels = map[string]string{}
				}
				for k, v := range g.Options.Labels {
					labels[k] = v
				}
				existing.SetLabels(labels)
			}
		default:
			return nil, fmt.Errorf("secretGenerator %s: behavior %q: want create, merge or replace", g.Name, g.Behavior)
		}
	}
	return objs, nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func applyPatch(fsys fs.FS, dir string, p patchEntry, objs []*unstructured.Unstructured) error {
	var raw []byte
	where := "inline patch"
	switch {
	case p.Path != "" && p.Patch != "":
		return fmt.Errorf("a patch has both path and patch")
	case p.Path != "":
		where = p.Path
		var err error
		if raw, err = fs.ReadFile(fsys, path.Join(dir, p.Path)); err != nil {
			return err
		}
	case p.Patch != "":
		raw = []byte(p.Patch)
	default:
		return fmt.Errorf("a patch has neither path nor patch")
	}
	docs, err := splitYAML(raw)
	if err != nil {
		return fmt.Errorf("patch %s: %w", where, err)
	}
	for i, doc := range docs {
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return fmt.Errorf("patch %s: document %d: %w", where, i+1, err)
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue
		}
		pu := &unstructured.Unstructured{}
		if err := pu.UnmarshalJSON(js); err != nil {
			return fmt.Errorf("patch %s: document %d: %w (JSON 6902 patches are not supported)", where, i+1, err)
		}
		var target *unstructured.Unstructured
		for _, u := range objs {
			if id(u) == id(pu) {
				target = u
			}
		}
		if target == nil {
			return fmt.Errorf("patch %s: document %d: no object %s to patch", where, i+1, id(pu))
		}
		typed, err := scheme.Scheme.New(target.GroupVersionKind())
		if err != nil {
			return fmt.Errorf("patch %s: %s: %w", where, id(pu), err)
		}
		orig, err := target.MarshalJSON()
		if err != nil {
			return err
		}
		out, err := strategicpatch.StrategicMergePatch(orig, js, typed)
		if err != nil {
			return fmt.Errorf("patch %s: %s: %w", where, id(pu), err)
		}
		if err := target.UnmarshalJSON(out); err != nil {
			return fmt.Errorf("patch %s: %s: %w", where, id(pu), err)
		}
	}
	return nil
}

// clusterScoped are the kinds the namespace transformer leaves alone (those
// aar's manifests could plausibly contain).
var clusterScoped = map[schema.GroupKind]bool{
	{Kind: "Namespace"}:        true,
	{Kind: "PersistentVolume"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                         true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                  true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                   true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                               true,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                                      true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                                true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:                 true,
}

func isNamespaced(u *unstructured.Unstructured) bool {
	return !clusterScoped[u.GroupVersionKind().GroupKind()]
}

// setNamespace is kustomize's namespace transformer, for the subset above.
// A RoleBinding subject naming a ServiceAccount of the build moves with it
// when its namespace is empty, "default" or the account's namespace before
// the move (kustomize's name-reference rule); other subjects stay.
func setNamespace(objs []*unstructured.Unstructured, ns string) {
	accounts := map[string]map[string]bool{} // name → namespaces before the move
	for _, u := range objs {
		if u.GetKind() == "ServiceAccount" && u.GetAPIVersion() == "v1" {
			if accounts[u.GetName()] == nil {
				accounts[u.GetName()] = map[string]bool{"": true, "default": true}
			}
			accounts[u.GetName()][u.GetNamespace()] = true
		}
	}
	for _, u := range objs {
		switch {
		case u.GetKind() == "Namespace" && u.GetAPIVersion() == "v1":
			u.SetName(ns)
		case isNamespaced(u):
			u.SetNamespace(ns)
		}
		gk := u.GroupVersionKind().GroupKind()
		if gk.Group != "rbac.authorization.k8s.io" || (gk.Kind != "RoleBinding" && gk.Kind != "ClusterRoleBinding") {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
		for _, s := range subjects {
			m, ok := s.(map[string]any)
			if !ok || m["kind"] != "ServiceAccount" {
				continue
			}
			name, _ := m["name"].(string)
			old, _ := m["namespace"].(string)
			if accounts[name][old] || (name == "default" && old == "") {
				m["namespace"] = ns
			}
		}
		if subjects != nil {
			_ = unstructured.SetNestedSlice(u.Object, subjects, "subjects")
		}
	}
}

// podTemplatePaths are where pod templates sit, by kind.
var podTemplatePaths = map[schema.GroupKind][]string{
	{Group: "apps", Kind: "Deployment"}:  {"spec", "template"},
	{Group: "apps", Kind: "StatefulSet"}: {"spec", "template"},
	{Group: "apps", Kind: "DaemonSet"}:   {"spec", "template"},
	{Group: "apps", Kind: "ReplicaSet"}:  {"spec", "template"},
	{Group: "batch", Kind: "Job"}:        {"spec", "template"},
	{Group: "batch", Kind: "CronJob"}:    {"spec", "jobTemplate", "spec", "template"},
}

func addLabels(objs []*unstructured.Unstructured, pairs map[string]string, templates bool) {
	for _, u := range objs {
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		for k, v := range pairs {
			labels[k] = v
		}
		u.SetLabels(labels)
		tp, ok := podTemplatePaths[u.GroupVersionKind().GroupKind()]
		if !templates || !ok {
			continue
		}
		lp := append(append([]string{}, tp...), "metadata", "labels")
		tl, _, _ := unstructured.NestedStringMap(u.Object, lp...)
		if tl == nil {
			tl = map[string]string{}
		}
		for k, v := range pairs {
			tl[k] = v
		}
		_ = unstructured.SetNestedStringMap(u.Object, tl, lp...)
		// kustomize labels a StatefulSet's claim templates as templates too.
		claims, _, _ := unstructured.NestedSlice(u.Object, "spec", "volumeClaimTemplates")
		for _, c := range claims {
			m, ok := c.(map[string]any)
			if !ok {
				continue
			}
			cl, _, _ := unstructured.NestedStringMap(m, "metadata", "labels")
			if cl == nil {
				cl = map[string]string{}
			}
			for k, v := range pairs {
				cl[k] = v
			}
			_ = unstructured.SetNestedStringMap(m, cl, "metadata", "labels")
		}
		if claims != nil {
			_ = unstructured.SetNestedSlice(u.Object, claims, "spec", "volumeClaimTemplates")
		}
	}
}

// setImage is kustomize's image transformer on pods and pod templates.
func setImage(objs []*unstructured.Unstructured, im imageEntry) error {
	if im.Name == "" {
		return fmt.Errorf("images: an entry without name")
	}
	for _, u := range objs {
		spec := []string{"spec"}
		if tp, ok := podTemplatePaths[u.GroupVersionKind().GroupKind()]; ok {
			spec = append(append([]string{}, tp...), "spec")
		} else if u.GetKind() != "Pod" || u.GetAPIVersion() != "v1" {
			continue
		}
		for _, field := range []string{"initContainers", "containers"} {
			cs, _, _ := unstructured.NestedSlice(u.Object, append(spec, field)...)
			for _, c := range cs {
				m, ok := c.(map[string]any)
				if !ok {
					continue
				}
				ref, _ := m["image"].(string)
				name, tag, digest := splitImage(ref)
				if name != im.Name {
					continue
				}
				if im.NewName != "" {
					name = im.NewName
				}
				switch {
				case im.Digest != "":
					tag, digest = "", im.Digest
				case im.NewTag != "":
					tag, digest = im.NewTag, ""
				}
				ref = name
				if tag != "" {
					ref += ":" + tag
				}
				if digest != "" {
					ref += "@" + digest
				}
				m["image"] = ref
			}
			if cs != nil {
				if err := unstructured.SetNestedSlice(u.Object, cs, append(spec, field)...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// splitImage splits an image reference into name, tag and digest. A colon
// before the last slash belongs to a registry's port, not a tag.
func splitImage(ref string) (name, tag, digest string) {
	name = ref
	if i := strings.Index(name, "@"); i >= 0 {
		name, digest = name[:i], name[i+1:]
	}
	if i := strings.LastIndex(name, ":"); i >= 0 && i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag, digest
}

// toJSON is an object's JSON, for the strict decoder.
func toJSON(u *unstructured.Unstructured) []byte {
	b, err := json.Marshal(u.Object)
	if err != nil {
		panic(err)
	}
	return b
}
