#!/usr/bin/env bash
# build-packages.sh: the .deb and the .rpm of attach-node, from a built
# binary and the files committed in this repository.
#
#   packaging/build-packages.sh [--fast] [--only deb|rpm] BINARY OUTDIR
#
# BINARY is the static attach-node (the release build, or in tests the debug
# one); its `--version` gives the package version and its ELF header the
# architecture. Written to OUTDIR (created if missing):
#
#   attach-node_<version>_<amd64|arm64>.deb        (dpkg-deb)
#   attach-node-<version>-1.<x86_64|aarch64>.rpm   (rpmbuild: Debian's `rpm`)
#
# Each holds:
#   /usr/bin/attach-node                                   0755
#   /usr/lib/systemd/system/attach-node-firstboot.service  0644, from
#       systemd/, with ExecStart pointed at /usr/bin/attach-node
#   /usr/share/man/man1/attach-node*.1.gz                  from docs/man/
#   bash, zsh and fish completions                         from completions/
#   the copyright file (and the licence text in the .rpm)
#
# The maintainer scripts only run `systemctl daemon-reload` when systemd is
# running. Installing never enables or starts the first-boot unit (the user
# does, once /etc/attach-node/firstboot.env exists); removing or purging the
# package never touches a joined node's state (/var/lib/attach-node, what
# `attach-node join` wrote): `attach-node reset` undoes a join.
#
# --fast compresses little (gzip -1), for the large debug binary in tests.
# SOURCE_DATE_EPOCH (default: the last commit's time) fixes every timestamp,
# so the same inputs make the same packages.
set -euo pipefail

PACKAGE=attach-node
MAINTAINER=${ATTACH_NODE_MAINTAINER:-"attach-node maintainers <attach-node@example.invalid>"}
HOMEPAGE=https://example.invalid/attach-node
SUMMARY="join this Linux machine to a Kubernetes cluster as a worker node"
UNIT=attach-node-firstboot.service

usage() {
    echo "usage: ${BASH_SOURCE[0]} [--fast] [--only deb|rpm] BINARY OUTDIR"
}

die() {
    printf 'build-packages.sh: %s\n' "$*" >&2
    exit 1
}

fast=0
only=all
while [ $# -gt 0 ]; do
    case $1 in
    --fast) fast=1; shift ;;
    --only)
        [ $# -ge 2 ] || die "--only needs deb or rpm"
        only=$2
        shift 2
        ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) usage >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -eq 2 ] || { usage >&2; exit 2; }
case $only in all | deb | rpm) ;; *) die "--only takes deb or rpm, not $only" ;; esac

bin=$1
out=$2
if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then die "$bin is not an executable file"; fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
umask 022
export LC_ALL=C TZ=UTC

# ---------------------------------------------------------------- the binary

[ "$(head -c 4 "$bin" | od -An -c | tr -d ' ')" = '177ELF' ] || die "$bin is not an ELF file"
machine=$(od -An -tu2 -j18 -N2 "$bin" | tr -d ' ')
case $machine in
62) deb_arch=amd64 rpm_arch=x86_64 ;;
183) deb_arch=arm64 rpm_arch=aarch64 ;;
*) die "$bin is for ELF machine $machine, which is not packaged" ;;
esac
if command -v readelf >/dev/null 2>&1; then
    # The packages declare no dependencies: the binary must need no loader.
    headers=$(readelf -lW "$bin") || die "readelf cannot read $bin"
    if [[ $headers == *"program interpreter"* ]]; then
        die "$bin is dynamically linked; build it with .cargo/config.toml's crt-static"
    fi
fi

version_line=$("$bin" --version) || die "$bin --version failed"
version=${version_line#"$PACKAGE "}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] ||
    die "unexpected version from $bin --version: $version_line"
# A semver pre-release (0.2.0-rc.1) sorts before its release in both
# formats only with a tilde: 0.2.0~rc.1.
pkg_version=${version/-/\~}

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

for f in "systemd/$UNIT" packaging/copyright LICENSE completions/attach-node.bash \
    completions/attach-node.zsh completions/attach-node.fish docs/man/attach-node.1; do
    [ -f "$repo/$f" ] || die "$repo/$f is missing"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ------------------------------------------------------------ the file tree

# The unit as systemd/ has it runs /usr/local/bin/attach-node (where
# install.sh puts it); a package's binary is /usr/bin/attach-node.
packaged_unit() {
    {
        echo "# Installed by the $PACKAGE package, which owns this file and"
        echo "# removes it: enable it with \`systemctl enable $UNIT\`."
        sed 's|^\(Exec[A-Za-z]*=[-@:+!]*\)/usr/local/bin/attach-node\b|\1/usr/bin/attach-node|' \
            "$repo/systemd/$UNIT"
    } >"$1"
    if grep -v '^[[:space:]]*#' "$1" | grep -q '/usr/local/bin/attach-node'; then
        die "systemd/$UNIT names /usr/local/bin/attach-node outside ExecStart=; teach packaged_unit() about it"
    fi
    grep -q '^ExecStart=/usr/bin/attach-node ' "$1" ||
        die "systemd/$UNIT has no ExecStart= running attach-node"
}

# stage ROOT ZSH_DIR: the files both packages install, under ROOT.
stage() {
    local root=$1 zsh_dir=$2 page
    install -D -m 0755 "$bin" "$root/usr/bin/attach-node"
    mkdir -p "$root/usr/lib/systemd/system"
    packaged_unit "$root/usr/lib/systemd/system/$UNIT"
    chmod 0644 "$root/usr/lib/systemd/system/$UNIT"
    mkdir -p "$root/usr/share/man/man1"
    for page in "$repo"/docs/man/*.1; do
        gzip -9 -n -c "$page" >"$root/usr/share/man/man1/$(basename "$page").gz"
    done
    install -D -m 0644 "$repo/completions/attach-node.bash" \
        "$root/usr/share/bash-completion/completions/attach-node"
    install -D -m 0644 "$repo/completions/attach-node.zsh" "$root$zsh_dir/_attach-node"
    install -D -m 0644 "$repo/completions/attach-node.fish" \
        "$root/usr/share/fish/vendor_completions.d/attach-node.fish"
}

# Every file and directory gets the same time, so rebuilding changes nothing.
clamp_times() {
    find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

description_body=" attach-node trades a short-lived openapi token (or an API server endpoint
 and a bootstrap token) for the cluster's join information, verifies the
 cluster CA the way kubeadm join does, and writes the kubelet and containerd
 configuration a node needs, journaling every change so that
 \`attach-node reset\` restores the host byte for byte.
 .
 The attach-node-firstboot.service unit joins a machine once at its first
 boot; it is installed but not enabled."

# ---------------------------------------------------------------------- .deb

build_deb() {
    local root=$work/deb doc=$work/deb/usr/share/doc/$PACKAGE file
    stage "$root" /usr/share/zsh/vendor-completions
    install -D -m 0644 "$repo/packaging/copyright" "$doc/copyright"
    {
        printf '%s (%s) unstable; urgency=medium\n\n' "$PACKAGE" "$pkg_version"
        printf '  * Release %s: %s\n\n' "$version" "$HOMEPAGE"
        printf ' -- %s  %s\n' "$MAINTAINER" "$(date -u -d "@$SOURCE_DATE_EPOCH" -R)"
    } | gzip -9 -n >"$doc/changelog.gz"
    chmod 0644 "$doc/changelog.gz"
    # Lintian tags that do not apply here, each with its reason.
    mkdir -p "$root/usr/share/lintian/overrides"
    cat >"$root/usr/share/lintian/overrides/$PACKAGE" <<EOF
# A static PIE (ET_DYN with no program interpreter: .cargo/config.toml's
# crt-static) is taken for a shared library without its DT_NEEDED entries.
# It needs no library by design: it runs from an empty root.
$PACKAGE: shared-library-lacks-prerequisites [usr/bin/attach-node]
# The packaged binary is the released one byte for byte (same sha256 as the
# file install.sh downloads), so it is not re-stripped here.
$PACKAGE: binary-has-unneeded-section .comment [usr/bin/attach-node]
# The first-boot unit drives systemd itself (enables and restarts the
# kubelet, orders after network-online.target); there is no sysvinit way.
$PACKAGE: package-supports-alternative-init-but-no-init.d-script [usr/lib/systemd/system/attach-node-firstboot.service]
# Bytes of compiled-in tables that happen to spell a misspelt word.
$PACKAGE: spelling-error-in-binary * [usr/bin/attach-node]
EOF
    chmod 0644 "$root/usr/share/lintian/overrides/$PACKAGE"

    # As dpkg-gencontrol counts it: KiB per file, rounded up; 1 per directory.
    local size
    size=$(find "$root" -mindepth 1 \( -type f -printf '%s\n' \) -o -printf '1024\n' |
        awk '{ kib += int(($1 + 1023) / 1024) } END { print kib }')
    mkdir -p "$root/DEBIAN"
    cat >"$root/DEBIAN/control" <<EOF
Package: $PACKAGE
Version: $pkg_version
Architecture: $deb_arch
Maintainer: $MAINTAINER
Installed-Size: $size
Section: admin
Priority: optional
Homepage: $HOMEPAGE
Description: $SUMMARY
$description_body
EOF
    cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# attach-node: make systemd see attach-node-firstboot.service. It is not
# enabled or started here: enable it once /etc/attach-node/firstboot.env
# holds the join's settings.
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
exit 0
EOF
    cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# attach-node: make systemd forget attach-node-firstboot.service. A joined
# node is left as it is: /var/lib/attach-node (the join's journal) and what
# `attach-node join` wrote stay; `attach-node reset` undoes a join.
set -e
case "$1" in
remove | purge)
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
    ;;
esac
if [ "$1" = purge ]; then
    # The user's `systemctl enable`, if it still points at the removed unit.
    link=/etc/systemd/system/multi-user.target.wants/attach-node-firstboot.service
    if [ -L "$link" ] && [ ! -e "$link" ]; then
        rm -f "$link"
    fi
fi
exit 0
EOF
    chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
    (
        cd "$root"
        find usr -type f -print0 | sort -z | xargs -0 md5sum
    ) >"$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
    clamp_times "$root"

    file=$out/${PACKAGE}_${pkg_version}_${deb_arch}.deb
    local compress=(-Zxz -z6)
    [ "$fast" = 1 ] && compress=(-Zgzip -z1)
    dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$file" >/dev/null
    echo "$file"
}

# ---------------------------------------------------------------------- .rpm

build_rpm() {
    local stage_root=$work/rpm-stage top=$work/rpmbuild lic file
    stage "$stage_root" /usr/share/zsh/site-functions
    lic=$stage_root/usr/share/licenses/$PACKAGE
    install -D -m 0644 "$repo/LICENSE" "$lic/LICENSE"
    install -D -m 0644 "$repo/packaging/copyright" "$lic/copyright"
    clamp_times "$stage_root"
    mkdir -p "$top/SPECS"
    cat >"$top/SPECS/$PACKAGE.spec" <<EOF
Name: $PACKAGE
Version: $pkg_version
Release: 1
Summary: $SUMMARY
License: Apache-2.0
URL: $HOMEPAGE
Packager: $MAINTAINER
# Static: no shared library, nothing to require.
AutoReqProv: no

%description
$(printf '%s\n' "$description_body" | sed 's/^ //; s/^\.$//')

%install
cp -a "$stage_root/." "%{buildroot}/"

%post
# Not enabled or started: enable it once /etc/attach-node/firstboot.env
# holds the join's settings.
if [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null 2>&1 || :; fi

%postun
# A joined node is left as it is: /var/lib/attach-node and what
# attach-node join wrote stay; attach-node reset undoes a join.
if [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null 2>&1 || :; fi

%files
%defattr(-,root,root,-)
%attr(0755,root,root) /usr/bin/attach-node
/usr/lib/systemd/system/$UNIT
/usr/share/man/man1/attach-node*.1.gz
%dir /usr/share/bash-completion
%dir /usr/share/bash-completion/completions
/usr/share/bash-completion/completions/attach-node
%dir /usr/share/zsh
%dir /usr/share/zsh/site-functions
/usr/share/zsh/site-functions/_attach-node
%dir /usr/share/fish
%dir /usr/share/fish/vendor_completions.d
/usr/share/fish/vendor_completions.d/attach-node.fish
%dir /usr/share/licenses/$PACKAGE
%license /usr/share/licenses/$PACKAGE/LICENSE
%license /usr/share/licenses/$PACKAGE/copyright
EOF
    local payload=w6.xzdio
    [ "$fast" = 1 ] && payload=w1.gzdio
    # No debuginfo split, no stripping or other post-install rewriting (the
    # release binary is stripped already; the debug one stays as built), no
    # build-id links, timestamps from SOURCE_DATE_EPOCH.
    rpmbuild -bb --quiet \
        --target "$rpm_arch" \
        --define "_topdir $top" \
        --define "_rpmdir $out" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "_binary_payload $payload" \
        --define "__os_install_post %{nil}" \
        --define "debug_package %{nil}" \
        --define "_build_id_links none" \
        --define "_buildhost reproducible" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        "$top/SPECS/$PACKAGE.spec" >"$work/rpmbuild.log" 2>&1 ||
        { cat "$work/rpmbuild.log" >&2; die "rpmbuild failed"; }
    file=$out/$PACKAGE-$pkg_version-1.$rpm_arch.rpm
    [ -f "$file" ] || { cat "$work/rpmbuild.log" >&2; die "rpmbuild made no $file"; }
    echo "$file"
}

if [ "$only" != rpm ]; then
    command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is missing (apt-get install dpkg)"
    build_deb
fi
if [ "$only" != deb ]; then
    command -v rpmbuild >/dev/null 2>&1 || die "rpmbuild is missing (apt-get install rpm)"
    build_rpm
fi
