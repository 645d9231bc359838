package main

import (
	"context"
	"errors"

	"github.com/aar-lab/aar/internal/campaign"
	"github.com/aar-lab/aar/internal/sandbox"
)

// kubeSandboxBackend is the backend a worker pod uses for its sandbox.
func kubeSandboxBackend() (sandbox.Backend, error) {
	return nil, errors.New("--sandbox kubernetes: not wired yet")
}

// kubeCampaign makes the campaign's workers pods on the cluster.
func kubeCampaign(ctx context.Context, g *globals, o *campaign.Options) error {
	return errors.New("--sandbox kubernetes: not wired yet")
}
