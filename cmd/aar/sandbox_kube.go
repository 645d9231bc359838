package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aar-lab/aar/internal/campaign"
	"github.com/aar-lab/aar/internal/sandbox"
	"github.com/aar-lab/aar/internal/sandbox/kubernetes"
)

// kubeSandboxBackend is the backend a worker pod uses for its sandbox: its
// configuration comes from the AAR_KUBE_* variables the launcher set on the
// pod, the cluster from the pod's service account (or a kubeconfig), and
// the token — needed only by sandboxes that reach the lab — from the worker.
func kubeSandboxBackend(token string) (sandbox.Backend, error) {
	cfg, err := kubernetes.FromEnv()
	if err != nil {
		return nil, usagef("--sandbox kubernetes: %v (aar run --sandbox kubernetes starts workers with these set)", err)
	}
	cfg.Token = token
	rc, cs, err := kubernetes.NewClient("")
	if err != nil {
		return nil, err
	}
	return kubernetes.NewBackend(cfg, rc, cs)
}

// kubeCampaign makes the campaign's workers pods on the cluster: the
// launcher, its configuration from the flags, and a cleanup that removes
// every object of the campaign when the run ends.
func kubeCampaign(o runOpts, copts *campaign.Options) (func(context.Context) error, error) {
	// The defaults, then AAR_KUBE_* (a campaign Job gets them from the
	// aar-run ConfigMap, see deploy/), then the flags.
	cfg, err := kubernetes.OverlayEnv(kubernetes.DefaultConfig())
	if err != nil {
		return nil, usageError{err}
	}
	e := o.engine
	if _, set := os.LookupEnv(kubernetes.EnvLabURL); !set {
		cfg.LabURL = o.labURL
	}
	for _, kv := range []struct {
		dst *string
		v   string
	}{{&cfg.Namespace, e.kubeNamespace}, {&cfg.Image, e.kubeImage}, {&cfg.LabURL, e.kubeLabURL}} {
		if kv.v != "" {
			*kv.dst = kv.v
		}
	}
	cfg.Campaign = copts.CampaignID
	if cfg.Image == "" {
		return nil, usagef("--sandbox kubernetes needs --kube-image (or AAR_KUBE_IMAGE): an image holding /usr/local/bin/aar that the cluster can pull (see deploy/README.md)")
	}
	if !strings.HasPrefix(cfg.LabURL, "http://") && !strings.HasPrefix(cfg.LabURL, "https://") {
		return nil, usagef("--sandbox kubernetes: the lab URL the pods use must be http(s)://… (give --kube-lab-url, e.g. %s)", kubernetes.DefaultLabURL)
	}
	if e.gpus != "" {
		n, err := strconv.Atoi(e.gpus)
		if err != nil || n < 0 {
			return nil, usagef("--gpus %q: give a number of GPUs per sandbox on kubernetes", e.gpus)
		}
		cfg.GPUs = n
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageError{err}
	}
	_, cs, err := kubernetes.NewClient(e.kubeconfig)
	if err != nil {
		return nil, err
	}
	l, err := kubernetes.NewLauncher(cfg, cs)
	if err != nil {
		return nil, err
	}
	copts.Launcher = l
	copts.WorkerData = cfg.WorkerDataDir
	copts.WorkerLab = cfg.LabURL
	// Model keys come from the cluster's Secret, never from this machine.
	copts.Env = nil
	return func(ctx context.Context) error {
		if err := l.Cleanup(ctx); err != nil {
			return fmt.Errorf("remove campaign %s's pods, secrets and policies: %w", cfg.Campaign, err)
		}
		return nil
	}, nil
}
