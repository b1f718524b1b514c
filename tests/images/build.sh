#!/usr/bin/env bash
# Builds berth's test images from Debian's busybox-static and pushes them to a
# local plain-HTTP registry on 127.0.0.1, with no internet access needed.
# Never installs anything: it names the Debian package that is missing instead.
#
# Usage: tests/images/build.sh [--port 5000] [--dir DIR]
#   --port  registry port on 127.0.0.1 (default 5000)
#   --dir   registry storage, config, log and pid file
#           (default ${XDG_CACHE_HOME:-$HOME/.cache}/berth-test-images)
#
# Images: pause:3.10, web:1, crash:1, done:1. An image whose tag the registry
# already has is not rebuilt. Stop the registry with tests/images/stop.sh.
set -euo pipefail

port=5000
dir="${XDG_CACHE_HOME:-$HOME/.cache}/berth-test-images"

usage() {
    sed -n '2,12s/^# \{0,1\}//p' "$0"
}

die() {
    echo "build.sh: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --port)
            [[ $# -ge 2 ]] || die "--port needs a value"
            port="$2"
            shift 2
            ;;
        --dir)
            [[ $# -ge 2 ]] || die "--dir needs a value"
            dir="$2"
            shift 2
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            die "unknown argument: $1"
            ;;
    esac
done

if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    die "bad port: $port"
fi

# The tools, each with the Debian package that provides it.
missing=()
for pair in busybox:busybox-static umoci:umoci skopeo:skopeo docker-registry:docker-registry curl:curl; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    die "missing tools; install them with: apt-get install -y ${missing[*]}"
fi
busybox="$(command -v busybox)"
# A dynamically linked busybox (Debian's "busybox" package) cannot run inside an
# image that has no libc.
if ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked; install Debian's busybox-static: apt-get install -y busybox-static"
fi

registry="127.0.0.1:$port"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

registry_up() {
    curl -sf -o /dev/null --max-time 2 "http://$registry/v2/"
}

start_registry() {
    local config="$dir/registry.yml"
    cat >"$config" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: $registry
EOF
    docker-registry serve "$config" </dev/null >>"$dir/registry.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/registry.pid"
    local tries
    for ((tries = 0; tries < 100; tries++)); do
        registry_up && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$dir/registry.pid"
            tail -n 20 "$dir/registry.log" >&2 || true
            die "docker-registry exited at start (is port $port taken?); log: $dir/registry.log"
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$dir/registry.pid"
    die "registry on $registry did not answer /v2/ in 10s; log: $dir/registry.log"
}

if registry_up; then
    echo "registry: reusing the one answering on $registry"
else
    start_registry
    echo "registry: started on $registry (pid $(cat "$dir/registry.pid"), storage $dir/storage)"
fi

has_image() {
    curl -sf -o /dev/null --max-time 5 \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$registry/v2/$1/manifests/$2"
}

images=(pause:3.10 web:1 crash:1 done:1)

# Sets `cmd` to the command of the image named $1. No entrypoint is set: CRI
# rejects an image whose Entrypoint is [""].
image_cmd() {
    case "$1" in
        pause) cmd=(/bin/sleep 2147483647) ;;
        web) cmd=(/bin/httpd -f -p 80 -h /www) ;;
        crash) cmd=(/bin/sh -c 'echo "crash: exiting with status 1"; exit 1') ;;
        done) cmd=(/bin/sh -c 'echo "done: finished"; exit 0') ;;
        *) die "no command for image $1" ;;
    esac
}

todo=()
for ref in "${images[@]}"; do
    if has_image "${ref%%:*}" "${ref#*:}"; then
        echo "image: $registry/$ref already present, skipped"
    else
        todo+=("$ref")
    fi
done
[[ ${#todo[@]} -gt 0 ]] || exit 0

work="$(mktemp -d "$dir/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
layout="$work/layout"
umoci_flags=()
[[ "$(id -u)" -eq 0 ]] || umoci_flags+=(--rootless)

# The base: busybox and its applet links in /bin, plus the usual top-level dirs.
umoci init --layout "$layout"
umoci new --image "$layout:base"
umoci unpack "${umoci_flags[@]}" --image "$layout:base" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root,www}
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
while read -r applet; do
    [[ "$applet" == busybox ]] || ln -sf busybox "$rootfs/bin/$applet"
done < <("$busybox" --list)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
umoci repack "${umoci_flags[@]}" --image "$layout:base" "$work/bundle"
umoci config --image "$layout:base" \
    --config.env PATH=/bin --config.workingdir / \
    --history.created_by "berth tests/images/build.sh: busybox base"

echo 'hello from berth' >"$work/index.html"

cmd=()
for ref in "${todo[@]}"; do
    name="${ref%%:*}"
    tag="${ref#*:}"
    image_cmd "$name"
    cmd_flags=()
    for arg in "${cmd[@]}"; do
        cmd_flags+=(--config.cmd "$arg")
    done
    local_tag="$name-$tag"
    umoci config --image "$layout:base" --tag "$local_tag" "${cmd_flags[@]}" \
        --history.created_by "berth tests/images/build.sh: $ref"
    if [[ "$name" == web ]]; then
        umoci insert "${umoci_flags[@]}" --image "$layout:$local_tag" \
            "$work/index.html" /www/index.html
    fi
    skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
        "oci:$layout:$local_tag" "docker://$registry/$ref"
    echo "image: pushed $registry/$ref"
done
