package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aar-lab/aar/internal/sandbox"
	"github.com/aar-lab/aar/internal/sandbox/docker"
)

// engineOpts choose where researchers' sandboxes run: local (bubblewrap on
// this host), docker (a container per sandbox on this host's engine) or
// kubernetes (a pod per sandbox on a cluster).
type engineOpts struct {
	kind        string
	dockerImage string
	gpus        string
	runtime     string
	// aar run --sandbox kubernetes only
	kubeconfig, kubeNamespace, kubeImage, kubeLabURL string
}

func addEngineFlags(f *pflag.FlagSet, o *engineOpts) {
	f.StringVar(&o.kind, "sandbox", "local", "where sandboxes run: local (bubblewrap), docker (a container each, on this host's engine) or kubernetes (a pod each; needs --lab reachable from the cluster)")
	f.StringVar(&o.dockerImage, "docker-image", "", "docker: the sandbox image (default: built by aar from this host's toolchain, as aar sandbox image build does)")
	f.StringVar(&o.gpus, "gpus", "", "docker: GPUs per sandbox, as docker run --gpus (all or a count)")
	f.StringVar(&o.runtime, "docker-runtime", "", "docker: OCI runtime for sandboxes (e.g. runsc for gVisor)")
}

// addKubeFlags are aar run's flags for --sandbox kubernetes (a worker pod
// reads the same settings from its AAR_KUBE_* environment).
func addKubeFlags(f *pflag.FlagSet, o *engineOpts) {
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubernetes: kubeconfig file (default $KUBECONFIG or ~/.kube/config; in a pod, its service account)")
	f.StringVar(&o.kubeNamespace, "kube-namespace", "", "kubernetes: namespace of the workers and sandboxes, the lab's (default $AAR_KUBE_NAMESPACE, else aar; see deploy/)")
	f.StringVar(&o.kubeImage, "kube-image", "", "kubernetes: the worker and sandbox image, holding /usr/local/bin/aar, a shell, coreutils, tar and python3 (default $AAR_KUBE_IMAGE)")
	f.StringVar(&o.kubeLabURL, "kube-lab-url", "", "kubernetes: the lab's URL as pods reach it (default $AAR_KUBE_LAB_URL, else --lab)")
}

func (o engineOpts) validate() error {
	switch o.kind {
	case "", "local", "docker", "kubernetes":
	default:
		return usagef("--sandbox %q: give local, docker or kubernetes", o.kind)
	}
	if o.kind != "docker" && (o.dockerImage != "" || o.runtime != "") {
		return usagef("--docker-image and --docker-runtime apply to --sandbox docker only")
	}
	if o.gpus != "" && o.kind != "docker" && o.kind != "kubernetes" {
		return usagef("--gpus applies to --sandbox docker or kubernetes")
	}
	return nil
}

// workerArgs are the flags an aar run passes its workers for these options.
func (o engineOpts) workerArgs() []string {
	if o.kind == "" || o.kind == "local" {
		return nil
	}
	a := []string{"--sandbox", o.kind}
	if o.kind == "kubernetes" {
		return a // a worker pod's settings come in its AAR_KUBE_* environment
	}
	for _, kv := range [][2]string{{"--docker-image", o.dockerImage}, {"--gpus", o.gpus}, {"--docker-runtime", o.runtime}} {
		if kv[1] != "" {
			a = append(a, kv[0], kv[1])
		}
	}
	return a
}

// dockerBackend connects to the engine and makes sure the sandbox image
// exists (building it from this host's toolchain the first time).
func (g *globals) dockerBackend(ctx context.Context, o engineOpts) (*docker.Backend, error) {
	c, err := docker.NewClient(ctx)
	if err != nil {
		return nil, err
	}
	img := o.dockerImage
	if img == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		if img, err = docker.EnsureImage(ctx, c, docker.ImageOptions{AarBinary: exe, Progress: g.stderr}); err != nil {
			return nil, err
		}
	}
	return &docker.Backend{Client: c, Image: img, GPUs: o.gpus, Runtime: o.runtime}, nil
}

// engineBackend is the sandbox backend the options name; root is the local
// backend's directory.
// token is the researcher's, for a Kubernetes sandbox that reaches the lab.
func (g *globals) engineBackend(ctx context.Context, o engineOpts, root, token string) (sandbox.Backend, error) {
	switch o.kind {
	case "docker":
		return g.dockerBackend(ctx, o)
	case "kubernetes":
		return kubeSandboxBackend(token)
	default:
		return g.sandboxBackend(root)
	}
}

func newSandboxImageCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Build the Docker image sandboxes run (for --sandbox docker)"}
	var (
		profile string
		paths   []string
		aar     string
	)
	build := &cobra.Command{
		Use:   "build [--profile cpu] [--path DIR]... [--aar PATH]",
		Short: "Build (or find) the sandbox image from this host's toolchain and the aar binary; prints its name",
		Long: `Build writes a minimal root (an /etc with only root and the researcher, uid
1000), the toolchain copied from this host (default: the shell, coreutils,
Debian's python3 with numpy, scipy and scikit-learn, and their shared
libraries — never /etc, /home, /root or /var), and the aar binary, and
imports it into the local Docker engine. The toolchain layer is tagged by
its paths and the host's package list, so it is built once (about 1.5 GB,
20 s here); the aar layer on top by the binary's hash. Use --path to copy
a different toolchain (a GPU stack, say) and --docker-image to run any
image that has /bin/sh and coreutils.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := docker.NewClient(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if aar == "" {
				if aar, err = os.Executable(); err != nil {
					return err
				}
			}
			ref, err := docker.EnsureImage(cmd.Context(), c, docker.ImageOptions{Profile: profile, Paths: paths, AarBinary: aar, Progress: g.stderr})
			if err != nil {
				if strings.Contains(err.Error(), "image path") {
					return usageError{err}
				}
				return err
			}
			fmt.Fprintln(g.stdout, ref)
			return nil
		},
	}
	f := build.Flags()
	f.StringVar(&profile, "profile", "cpu", "the toolchain's name (the image tag's prefix)")
	f.StringSliceVar(&paths, "path", nil, "host file or directory (glob) to copy into the image, repeatable (default: the cpu toolchain)")
	f.StringVar(&aar, "aar", "", "the aar binary to put in the image (default: this one)")
	c.AddCommand(build)
	return c
}
