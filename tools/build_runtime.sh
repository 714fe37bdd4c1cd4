#!/usr/bin/env bash
# Build one runtime under .runtimes/ idempotently: mxnet (a venv), cntk (a Python 2.7 tree from
# Debian bullseye) or graphviz (`dlspec graph`'s dot: Debian's packages unpacked with dpkg -x, no
# change to the host). The recipes are /work/shared/RUNTIMES.md's, measured on bookworm.
#
# Usage: tools/build_runtime.sh mxnet|cntk|graphviz
#   HOST_PYTHON     a Python 3.11 with pip (default python3): makes the mxnet venv, downloads wheels
#   DEBIAN_MIRROR   where debootstrap fetches bullseye (default: the first deb.debian.org-style
#                   URI in this machine's apt sources, else http://deb.debian.org/debian)
#
# Done:   .runtimes/NAME/.dlspec-built holds the recipe; a rerun with the same recipe does nothing.
# Failed: .runtimes/NAME.unavailable holds one line saying why (the tests and `dlspec doctor`
#         print it); the exit status is 1. A later successful build removes it.
set -euo pipefail

NAME="${1:?usage: tools/build_runtime.sh mxnet|cntk|graphviz}"
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
RUNTIMES="$ROOT_DIR/.runtimes"
DEST="$RUNTIMES/$NAME"
STAMP="$DEST/.dlspec-built"
REASON="$RUNTIMES/$NAME.unavailable"
WORK="$DEST"  # built in place; the stamp, written last, marks it complete
HOST_PYTHON="${HOST_PYTHON:-python3}"
LOG="$RUNTIMES/$NAME.log"

MXNET_RECIPE="mxnet==1.9.1 numpy==1.23.5 (venv of $("$HOST_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo '?'))"
# graphviz: names the candidate version of this host's apt, so a new Debian point release rebuilds
# it (read when needed: a fresh host learns it from the build's apt-get update)
graphviz_recipe() {
    local version
    version="$(apt-cache policy graphviz 2>/dev/null | sed -n 's/^ *Candidate: //p')"
    echo "graphviz ${version:-?} and its libraries (apt-get download, dpkg -x), fonts-dejavu-core (fonts.conf relative to the tree), dot -c, a wrapper running the tree's own loader"
}
CNTK_RECIPE="bullseye minbase + python2.7 libpython2.7 libopenmpi3 openmpi-bin libgomp1 ca-certificates; pip==20.3.4; cntk==2.7.post2 cp27mu; mpiexec and orted launchers"

fail() {
    mkdir -p "$RUNTIMES"
    echo "$*" >"$REASON"
    echo "build_runtime $NAME: FAILED: $*" >&2
    exit 1
}

# Run a step with its output in the log; on failure the reason names the step and the log's tail.
step() {
    local what="$1" start status=0 last began=$SECONDS
    shift
    echo "== $what" >>"$LOG"
    start=$(wc -l <"$LOG")
    "$@" >>"$LOG" 2>&1 || status=$?
    last="$(tail -n +$((start + 1)) "$LOG" | tail -n 1 | cut -c1-300)"
    echo "-- $((SECONDS - began)) s, exit $status" >>"$LOG"
    if [ "$status" != 0 ]; then
        fail "$what failed (exit $status): ${last:-no output} (full log: ${LOG#"$ROOT_DIR"/})"
    fi
}

recipe() {
    case "$NAME" in
        mxnet) echo "$MXNET_RECIPE" ;;
        cntk) echo "$CNTK_RECIPE" ;;
        graphviz) graphviz_recipe ;;
        *) echo "unknown runtime $NAME (known: mxnet, cntk, graphviz)" >&2 && exit 2 ;;
    esac
}

build_mxnet() {
    step "create the venv ($HOST_PYTHON -m venv)" "$HOST_PYTHON" -m venv "$WORK"
    step "pip install mxnet==1.9.1 numpy==1.23.5" \
        "$WORK/bin/python" -m pip install -q mxnet==1.9.1 numpy==1.23.5
    step "import mxnet" "$WORK/bin/python" -c "import mxnet; print(mxnet.__version__)"
}

# The mirror this machine's apt uses (deb822 or one-line sources), or Debian's default.
debian_mirror() {
    local uri
    uri="$(grep -hoE '(URIs:|^deb) +https?://[^ ]+/debian/?( |$)' \
        /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
        grep -oE 'https?://[^ ]+' | head -n 1 || true)"
    echo "${DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

need_debootstrap() {
    command -v debootstrap >/dev/null && return 0
    [ "$(id -u)" = 0 ] || fail "debootstrap is missing and installing it needs root (apt-get install debootstrap)"
    command -v apt-get >/dev/null || fail "debootstrap is missing and there is no apt-get to install it (a Debian-family host is needed)"
    step "apt-get update" apt-get update -q
    step "apt-get install debootstrap" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
}

in_tree() {
    env -u PIP_FIND_LINKS -u PYTHONPATH -u PYTHONHOME chroot "$WORK/tree" "$@"
}

build_cntk() {
    [ "$(id -u)" = 0 ] || fail "building the CNTK tree needs root (debootstrap, chroot); running it later does not"
    need_debootstrap
    local tree="$WORK/tree" mirror wheels
    mirror="$(debian_mirror)"
    mkdir -p "$WORK"
    step "debootstrap --variant=minbase bullseye from $mirror" \
        debootstrap --variant=minbase bullseye "$tree" "$mirror"
    mount -t proc proc "$tree/proc"
    trap 'umount "$WORK/tree/proc" 2>/dev/null || true' EXIT  # also when a step fails
    # openmpi-bin: mpiexec, which starts a script's data-parallel replicas (--replicas N)
    step "apt-get install python2.7 and CNTK's libraries in the tree" \
        in_tree env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        python2.7 libpython2.7 libopenmpi3 openmpi-bin libgomp1 ca-certificates
    umount "$tree/proc"
    trap - EXIT
    # this machine's HTTPS may pass a proxy whose CA only the host's bundle holds
    cp /etc/ssl/certs/ca-certificates.crt "$tree/etc/ssl/certs/ca-certificates.crt"
    wheels="$tree/tmp/wheels"
    mkdir -p "$wheels"
    step "download pip==20.3.4 (host pip)" \
        "$HOST_PYTHON" -m pip download -q --no-deps -d "$wheels" pip==20.3.4
    step "download cntk==2.7.post2 cp27mu (host pip)" \
        "$HOST_PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 2.7 \
        --implementation cp --abi cp27mu --platform manylinux1_x86_64 -d "$wheels" cntk==2.7.post2
    step "bootstrap pip 20.3.4 in the tree" in_tree /usr/bin/python2.7 \
        /tmp/wheels/pip-20.3.4-py2.py3-none-any.whl/pip install -q --no-index /tmp/wheels/pip-20.3.4-py2.py3-none-any.whl
    step "pip install cntk in the tree" in_tree /usr/bin/python2.7 -m pip install -q \
        --no-warn-script-location /tmp/wheels/cntk-2.7.post2-cp27-cp27mu-manylinux1_x86_64.whl
    rm -rf "$wheels" "$tree/var/cache/apt/archives/"*.deb "$tree/root/.cache"
    # CNTK 2.7 was linked against OpenMPI 1.10's sonames; bullseye ships 4.1's
    mkdir -p "$tree/usr/lib/dlspec-mpi"
    ln -sfn ../x86_64-linux-gnu/libmpi_cxx.so.40 "$tree/usr/lib/dlspec-mpi/libmpi_cxx.so.1"
    ln -sfn ../x86_64-linux-gnu/libmpi.so.40 "$tree/usr/lib/dlspec-mpi/libmpi.so.12"
    write_cntk_launcher "$WORK/python"
    write_mpi_launcher "$WORK/mpiexec" orterun "mpiexec, e.g.
# \`mpiexec -n 2 <this folder>/python script.py\` (as root add --allow-run-as-root; more processes
# than cores: --oversubscribe). Other hosts: the same tree at the same path, and
# --launch-agent <this folder>/orted."
    write_mpi_launcher "$WORK/orted" orted "the daemon mpiexec starts on every other host
# (mpiexec --launch-agent <this folder>/orted)."
    step "import cntk (through the launcher, as a user would)" \
        "$WORK/python" -c "import cntk; print(cntk.__version__)"
    step "mpiexec -n 2 (through its launcher)" \
        "$WORK/mpiexec" --allow-run-as-root --oversubscribe -n 2 "$WORK/python" -c \
        "import cntk.train.distributed as d; assert d.Communicator.num_workers() == 2; d.Communicator.finalize()"
}

# The launcher runs the tree's python2.7 with the tree's own loader and libraries: no root.
write_cntk_launcher() {
    cat >"$1" <<'EOF'
#!/bin/sh
# CNTK 2.7's Python 2.7, run from the Debian bullseye tree beside this file without root or chroot
# (made by tools/build_runtime.sh cntk). The host's PYTHONPATH and PIP_FIND_LINKS are Python 3's.
here="$(cd "$(dirname "$0")" && pwd)"
tree="$here/tree"
libs="$tree/usr/lib/x86_64-linux-gnu"
unset PYTHONPATH PIP_FIND_LINKS
# a script's --replicas N runs it again under the tree's mpiexec, each replica through this file
export DLSPEC_MPIEXEC="${DLSPEC_MPIEXEC:-$here/mpiexec}" DLSPEC_PYTHON="${DLSPEC_PYTHON:-$here/python}"
PYTHONHOME="$tree/usr" exec "$libs/ld-linux-x86-64.so.2" \
    --library-path "$tree/usr/lib/dlspec-mpi:$libs:$tree/lib/x86_64-linux-gnu" \
    "$tree/usr/bin/python2.7" "$@"
EOF
    chmod +x "$1"
}

# Open MPI 4.1's mpiexec (orterun) and orted from the tree, likewise: Open MPI and PMIx look for
# their plugins, help texts and settings under the tree's /usr and /etc instead of the host's.
# $1: the launcher's path, $2: the tree's program it runs, $3: what it is for.
write_mpi_launcher() {
    cat >"$1" <<EOF
#!/bin/sh
# Open MPI 4.1's $2 from the Debian bullseye tree beside this file, run without root or chroot
# (made by tools/build_runtime.sh cntk): $3
EOF
    cat >>"$1" <<'EOF'
here="$(cd "$(dirname "$0")" && pwd)"
tree="$here/tree"
libs="$tree/usr/lib/x86_64-linux-gnu"
export OPAL_PREFIX="$tree/usr"
export PMIX_INSTALL_PREFIX="$libs/pmix2"
export PMIX_MCA_mca_base_component_path="$libs/pmix2/lib/pmix"
export OMPI_MCA_mca_base_param_files="$tree/etc/openmpi/openmpi-mca-params.conf"
export OMPI_MCA_mtl="^ofi,psm"  # InfiniBand transports, whose libraries the tree lacks
EOF
    cat >>"$1" <<EOF
exec "\$libs/ld-linux-x86-64.so.2" \\
    --library-path "\$tree/usr/lib/dlspec-mpi:\$libs:\$tree/lib/x86_64-linux-gnu" \\
    "\$tree/usr/bin/$2" "\$@"
EOF
    chmod +x "$1"
}

# graphviz's packages and every library they need, from this host's apt: the host's own packages
# (debconf, dpkg, tar...) and the many fonts are left out; the wrapper uses DejaVu only.
GRAPHVIZ_SKIP='^(debconf|cdebconf|dpkg|install-info|tar|sysvinit-utils|lsb-base|(fonts|ttf|xfonts)-.*)$'

graphviz_packages() {
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances graphviz | grep -E '^[a-z0-9]' | sort -u |
        grep -vE "$GRAPHVIZ_SKIP"
    echo fonts-dejavu-core
}

build_graphviz() {
    command -v apt-get >/dev/null || fail "graphviz's packages come from apt-get download: a Debian-family host is needed (or put graphviz's dot on PATH)"
    if ! apt-cache show graphviz >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || fail "apt knows no graphviz package and refreshing its lists needs root (apt-get update)"
        step "apt-get update" apt-get update -q
    fi
    local debs="$WORK/debs" tree="$WORK/tree" pkgs
    mkdir -p "$debs" "$tree"
    pkgs="$(graphviz_packages | tr '\n' ' ')"
    # apt-get download writes to the current folder; as root it drops to _apt, who must write it
    chmod 777 "$debs"
    step "apt-get download graphviz and its libraries" \
        sh -c "cd '$debs' && apt-get download -q $pkgs"
    step "dpkg -x the packages" sh -c "for d in '$debs'/*.deb; do dpkg -x \"\$d\" '$tree' || exit 1; done"
    rm -rf "$debs"
    write_fonts_conf "$tree"
    write_dot_launcher "$WORK/dot"
    [ -f "$tree/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] ||
        [ -f "$tree/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] ||
        fail "libc6's package held no x86-64 loader (ld-linux-x86-64.so.2): an x86-64 Debian host is needed"
    step "dot -c (register the plugins)" "$WORK/dot" -c
    step "dot -Tsvg (through the wrapper)" sh -c "echo 'digraph { a -> b }' | '$WORK/dot' -Tsvg >/dev/null"
    step "dot -Tpng (through the wrapper)" sh -c "echo 'digraph { a -> b }' | '$WORK/dot' -Tpng >/dev/null"
}

# fontconfig reads the tree's DejaVu fonts only, and caches in the tree, whatever the host has;
# the paths are relative to the file (prefix="relative"), so the tree may move (a checkout moved,
# or a runtime built through a worktree's link): an absolute path to a folder gone left
# fontconfig without fonts, and dot laid text out with made-up widths.
write_fonts_conf() {
    mkdir -p "$1/etc/dlspec-fonts" "$1/var/cache/fontconfig"
    cat >"$1/etc/dlspec-fonts/fonts.conf" <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <dir prefix="relative">../../usr/share/fonts</dir>
  <cachedir prefix="relative">../../var/cache/fontconfig</cachedir>
</fontconfig>
EOF
}

# The wrapper runs the tree's dot with the tree's loader and libraries (no root, no host libraries)
# and points graphviz at its plugins and fontconfig at the tree's fonts.
write_dot_launcher() {
    cat >"$1" <<'EOF'
#!/bin/sh
# Graphviz's dot from the Debian tree beside this file (made by tools/build_runtime.sh graphviz).
here="$(cd "$(dirname "$0")" && pwd)"
tree="$here/tree"
libs="$tree/usr/lib/x86_64-linux-gnu"
export GVBINDIR="$libs/graphviz"
export FONTCONFIG_FILE="$tree/etc/dlspec-fonts/fonts.conf"
# the loader itself, not lib64's link to it: that link is absolute, so it names the host's loader
loader="$tree/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
[ -f "$loader" ] || loader="$libs/ld-linux-x86-64.so.2"  # a release whose libc6 is in /usr only
exec "$loader" --library-path "$libs:$tree/lib/x86_64-linux-gnu" "$tree/usr/bin/dot" "$@"
EOF
    chmod +x "$1"
}

main() {
    local want start
    want="$(recipe)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        rm -f "$REASON"
        exit 0
    fi
    echo "build_runtime $NAME: building ${DEST#"$ROOT_DIR"/} ($want); log: ${LOG#"$ROOT_DIR"/}" >&2
    start=$(date +%s)
    mkdir -p "$RUNTIMES"
    : >"$LOG"
    if mountpoint -q "$DEST/tree/proc" 2>/dev/null; then umount "$DEST/tree/proc"; fi
    rm -rf "$DEST"
    "build_$NAME"
    recipe >"$STAMP"  # graphviz's names the version its build found
    rm -f "$REASON"
    echo "build_runtime $NAME: built in $(($(date +%s) - start)) s ($(du -sh "$DEST" | cut -f1))" >&2
}

main
