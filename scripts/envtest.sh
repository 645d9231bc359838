#!/usr/bin/env bash
# Builds the kube-apiserver and etcd binaries that the Kubernetes backend's
# envtest suite (internal/sandbox/kube) runs against, from the Go module proxy
# (tools/envtest pins k8s.io/kubernetes v1.37.2). Cached: a second run with the
# binaries present does nothing. About 15 minutes on 2 cores when cold.
#
#   scripts/envtest.sh            build if missing, print the directory
#   scripts/envtest.sh --check    exit 0 if the cache is complete, 1 if not
#
# The directory is $AAR_ENVTEST_DIR, default ~/.cache/aar/envtest/v1.37.2; point
# KUBEBUILDER_ASSETS at it (make test-kube does).
set -euo pipefail
version=v1.37.2
dir=${AAR_ENVTEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aar/envtest/$version}
complete() { [[ -x $dir/kube-apiserver && -x $dir/etcd && -f $dir/.complete ]]; }
if [[ ${1:-} == --check ]]; then
	complete && exit 0 || exit 1
fi
if complete; then
	echo "$dir"
	exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$root/tools/envtest"
echo "envtest: building kube-apiserver $version and etcd into $dir (about 15 min cold)" >&2
start=$SECONDS
CGO_ENABLED=0 go build -trimpath -o "$tmp/etcd" ./etcd
echo "envtest: etcd built ($((SECONDS - start)) s)" >&2
CGO_ENABLED=0 go build -trimpath -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
echo "envtest: kube-apiserver built ($((SECONDS - start)) s)" >&2
mv "$tmp/etcd" "$tmp/kube-apiserver" "$dir/"
touch "$dir/.complete"
echo "$dir"
