// Package kubernetes is the cluster sandbox backend and worker launcher:
// each sandbox is a pod (with a NetworkPolicy and a Secret) made through the
// Kubernetes API, commands run in it through the API's exec subresource, and
// each researcher's worker (`aar researcher`) is a pod of its own.
//
// A sandbox pod runs as uid 1000 with no service account token, no
// privileges, no capabilities, a read-only root, a size-limited /workspace
// and in-memory /tmp, /data and /shared mounted read-only (a second
// container, "files", under another uid, is the only writer: the backend
// copies the testbed's public view and the forum into it), and a
// NetworkPolicy that denies every connection, or, for a sandbox that needs
// the lab (agent-cli), allows only the lab's pods and cluster DNS. The lab
// token never appears in a pod spec, an exec request or a log: pods read it
// from a Secret.
//
// Commands run only on a real cluster (exec needs a kubelet); the tests run
// the object lifecycle against a real kube-apiserver and etcd (envtest) and
// play the kubelet by writing pod status.
//
// This package must never hold labels, the lab's data directory or another
// researcher's token, and never puts a token literal into an object, an
// error or a log line.
package kubernetes
