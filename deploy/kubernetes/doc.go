// Package kubernetes holds aar's Kubernetes manifests (a Kustomize base in
// base/, overlays in overlays/, a campaign Job in examples/) and the tests
// that keep them honest: every kustomization is rendered without the
// kustomize binary, decoded strictly with client-go's scheme, checked for
// what deploy/README.md promises (securityContext, probes, least-privilege
// RBAC, network policies, volumes), and created on a real kube-apiserver
// (envtest) where one is available.
//
// It holds no Go code that aar runs, and must never grow any: a cluster is
// driven by the sandbox backend in internal/sandbox/kubernetes, not from here.
package kubernetes
