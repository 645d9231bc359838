package bwrap

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Profile is what a sandbox's root holds besides /workspace, /tmp, /data,
// /shared, the lab socket and the aar binary: host directories bound
// read-only at the same path (an allow-list, never the host's /), paths
// under them hidden by an empty tmpfs, extra environment, and a check
// command `aar sandbox doctor` runs inside to tell whether the profile works
// on this host.
type Profile struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	ReadOnly    []string          `json:"read_only"`
	Hidden      []string          `json:"hidden,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Check       []string          `json:"check,omitempty"`
	// Fix says how to install what Check needs, shown when it fails.
	Fix string `json:"fix,omitempty"`
}

// CPUProfile is the built-in profile: shell tools, the aar toolkit and
// Debian's python3 with numpy, scipy and scikit-learn.
func CPUProfile() Profile {
	return Profile{
		Name:        "cpu",
		Description: "shell tools, the aar toolkit, Debian python3 with numpy, scipy and scikit-learn",
		ReadOnly:    []string{"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/share/zoneinfo", "/etc/alternatives", "/etc/ld.so.cache", "/etc/ssl"},
		// Toolchain sources and data packages that live under /usr/lib.
		Hidden: []string{"/usr/lib/go", "/usr/lib/R", "/usr/lib/google-cloud-sdk"},
		Check:  []string{"python3", "-c", "import numpy, scipy, sklearn; print('numpy', numpy.__version__, 'scipy', scipy.__version__, 'scikit-learn', sklearn.__version__)"},
		Fix:    "apt-get install python3-numpy python3-scipy python3-sklearn",
	}
}

// forbidden are host paths no profile may expose: the sandbox must never see
// the whole host, homes, the lab's or other sandboxes' state, or kernel
// interfaces beyond its own /proc and /dev.
var forbidden = []string{"/", "/root", "/home", "/var", "/srv", "/opt", "/tmp", "/run", "/proc", "/sys", "/dev", "/etc", "/usr", "/usr/local", "/usr/share", "/usr/src", "/mnt", "/media", "/workspace", "/data", "/shared"}

// Validate checks a profile; the error names the field and how to fix it.
func (p Profile) Validate() error {
	if !idRE.MatchString(p.Name) {
		return fmt.Errorf("profile name %q: use lower-case letters, digits, '.', '_' or '-'", p.Name)
	}
	if len(p.ReadOnly) == 0 {
		return fmt.Errorf("profile %s: read_only is empty; list the host directories the tools need (e.g. /usr/bin, /usr/lib)", p.Name)
	}
	for _, list := range [][]string{p.ReadOnly, p.Hidden} {
		for _, d := range list {
			if !filepath.IsAbs(d) || filepath.Clean(d) != d {
				return fmt.Errorf("profile %s: path %q must be absolute and clean", p.Name, d)
			}
		}
	}
	for _, d := range p.ReadOnly {
		if slices.Contains(forbidden, d) {
			return fmt.Errorf("profile %s: %s may not be exposed to a sandbox; list narrower directories (e.g. /usr/bin, /usr/lib/x86_64-linux-gnu)", p.Name, d)
		}
		for _, pre := range []string{"/home/", "/root/", "/var/", "/tmp/", "/run/", "/proc/", "/sys/"} {
			if strings.HasPrefix(d, pre) {
				return fmt.Errorf("profile %s: %s is under %s, which holds host or lab state", p.Name, d, pre)
			}
		}
	}
	for k := range p.Env {
		if k == "" || strings.ContainsAny(k, "= ") {
			return fmt.Errorf("profile %s: environment name %q is not valid", p.Name, k)
		}
	}
	return nil
}

// LoadProfiles reads NAME.json files in dir (a missing dir holds none).
func LoadProfiles(dir string) (map[string]Profile, error) {
	out := map[string]Profile{}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var p Profile
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("sandbox profile %s: %v", f, err)
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".json"); p.Name != want {
			return nil, fmt.Errorf("sandbox profile %s: name %q must match the file name %q", f, p.Name, want)
		}
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("sandbox profile %s: %v", f, err)
		}
		out[p.Name] = p
	}
	return out, nil
}

// profile finds a profile by name: the backend's own, then the built-in.
func (b *Backend) profile(name string) (Profile, error) {
	if p, ok := b.Profiles[name]; ok {
		return p, nil
	}
	if name == "cpu" {
		return CPUProfile(), nil
	}
	return Profile{}, fmt.Errorf("sandbox profile %q is not defined; have %s (add one as DATA/sandbox-profiles/%s.json, see the README)", name, strings.Join(b.ProfileNames(), ", "), name)
}

// ProfileNames lists the backend's profiles, built-in first.
func (b *Backend) ProfileNames() []string {
	names := []string{"cpu"}
	var extra []string
	for n := range b.Profiles {
		if n != "cpu" {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	return append(names, extra...)
}
