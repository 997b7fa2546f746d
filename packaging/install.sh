#!/bin/sh
# install.sh: download attach-node, check its sha256, install it, then run
# `attach-node join`. The curl one-liner:
#
#   export ATTACH_NODE_BASE_URL=https://downloads.example.com/attach-node/v0.1.0
#   export ATTACH_NODE_CONTROL_PLANE=https://cp.example.com
#   export ATTACH_NODE_OPENAPI_TOKEN_FILE=/root/openapi-token   # root-only
#   curl -fsSL --proto '=https' "$ATTACH_NODE_BASE_URL/install.sh" | sh -s -- --labels a=b
#
# Arguments are passed to `attach-node join`. The token never travels in
# argv: it is read from a file (ATTACH_NODE_OPENAPI_TOKEN_FILE, or
# --openapi-token-file FILE), from stdin with `--openapi-token-file -` when
# this script runs from a file (piped into sh, its stdin is the script),
# or from the environment (ATTACH_NODE_OPENAPI_TOKEN or ATTACH_NODE_TOKEN;
# then the shell running this script holds it too, so prefer the others).
# --openapi-token and --token are refused: they would put the token in
# every process list.
#
# Settings (environment):
#   ATTACH_NODE_BASE_URL            where attach-node-<version>-<arch> and
#                                   SHA256SUMS are (required; https://)
#   ATTACH_NODE_VERSION             default 0.1.0, this script's release
#   ATTACH_NODE_SHA256              expected sha256 of the binary; given, it
#                                   replaces SHA256SUMS (a pin that does not
#                                   come from the server being checked)
#   ATTACH_NODE_INSTALL_DIR         default /usr/local/bin (the path that
#                                   `attach-node uninstall` removes)
#   ATTACH_NODE_INSECURE_DOWNLOAD=1 allow an http:// base URL
#
# Exit codes: attach-node join's own (docs/contract.md §5), passed through;
# before it runs, the same meanings: 2 bad arguments or settings, 4 sha256
# mismatch (nothing installed), 5 download failed, 6 could not install,
# 9 unsupported machine (architecture, no curl or sha256sum).
#
# No `set -x`, and nothing here prints a token. Everything is in functions
# called on the last line, inside braces: sh runs a { ... } group only once
# it has read the closing brace, so a download cut short anywhere, even in
# the middle of that line, runs nothing (a bare `main` cut before its "$@"
# would run the join with none of the arguments).
set -eu

say() {
    printf 'install.sh: %s\n' "$*" >&2
}

die() {
    code=$1
    shift
    say "error: $*"
    exit "$code"
}

tmp=
staged=
cleanup() {
    if [ -n "$staged" ]; then rm -f "$staged"; fi
    if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
}

# Takes the tokens out of the environment, so that no helper (curl,
# sha256sum, ...) inherits them; only attach-node gets them back.
hide_tokens() {
    openapi_token=${ATTACH_NODE_OPENAPI_TOKEN-}
    bootstrap_token=${ATTACH_NODE_TOKEN-}
    unset ATTACH_NODE_OPENAPI_TOKEN ATTACH_NODE_TOKEN
}

check_args() {
    for arg in "$@"; do
        case $arg in
        --openapi-token | --openapi-token=* | --token | --token=*)
            # Only the flag's name: its value may be the token.
            die 2 "${arg%%=*} would put the token in the process list; export" \
                "ATTACH_NODE_OPENAPI_TOKEN (or ATTACH_NODE_TOKEN) instead, or use" \
                "--openapi-token-file FILE (--token-file FILE)"
            ;;
        esac
    done
}

read_settings() {
    base=${ATTACH_NODE_BASE_URL-}
    base=${base%/}
    case $base in
    https://?*) proto='=https' ;;
    http://?*)
        [ "${ATTACH_NODE_INSECURE_DOWNLOAD-}" = 1 ] ||
            die 2 "ATTACH_NODE_BASE_URL is http://; use https://, or set ATTACH_NODE_INSECURE_DOWNLOAD=1"
        say "warning: downloading over plain http: anyone on the path can swap the binary" \
            "and SHA256SUMS together (set ATTACH_NODE_SHA256 to pin the binary)"
        proto='=http,https'
        ;;
    '') die 2 "ATTACH_NODE_BASE_URL is not set (where attach-node's release files are)" ;;
    *) die 2 "ATTACH_NODE_BASE_URL must start with https://" ;;
    esac

    version=${ATTACH_NODE_VERSION:-0.1.0}
    case $version in
    *[!0-9A-Za-z.+_-]*) die 2 "ATTACH_NODE_VERSION has characters a version does not have" ;;
    esac

    pin=$(printf '%s' "${ATTACH_NODE_SHA256-}" | tr 'A-F' 'a-f')

    dir=${ATTACH_NODE_INSTALL_DIR:-/usr/local/bin}
    case $dir in
    /*) ;;
    *) die 2 "ATTACH_NODE_INSTALL_DIR must be an absolute path" ;;
    esac
}

detect_arch() {
    machine=$(uname -m)
    case $machine in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die 9 "unsupported architecture $machine: attach-node is built for x86_64 and aarch64" ;;
    esac
}

need() {
    command -v "$1" >/dev/null 2>&1 || die 9 "$1 is needed and is not installed"
}

# fetch URL FILE. `-q` first: no ~/.curlrc can turn checks off. --proto
# also holds for redirects. stdin stays the script's (or the token's).
fetch() {
    curl -q -fsSL --proto "$proto" --proto-redir "$proto" --retry 3 \
        --connect-timeout 10 --max-time 600 -o "$2" "$1" </dev/null ||
        die 5 "cannot download $1"
}

is_sha256() {
    case $1 in
    *[!0-9a-f]*) return 1 ;;
    esac
    [ ${#1} -eq 64 ]
}

# Sets `want`: the pin, or the binary's line in SHA256SUMS
# ("<hex>  <name>", or "<hex> *<name>" as `sha256sum -b` writes it).
expected_sha256() {
    if [ -n "$pin" ]; then
        is_sha256 "$pin" || die 2 "ATTACH_NODE_SHA256 is not 64 hex digits"
        want=$pin
        return
    fi
    fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS"
    want=$(awk -v f="$name" '$2 == f || $2 == "*" f { print $1 }' "$tmp/SHA256SUMS" |
        tr 'A-F' 'a-f')
    is_sha256 "$want" ||
        die 4 "SHA256SUMS has no single valid entry for $name; nothing was installed"
}

sha256_of() {
    sum=$(sha256sum "$1" </dev/null)
    printf '%s\n' "${sum%% *}"
}

# Verified first, then copied next to its final name and renamed over it:
# the binary at $dir/attach-node is always a whole, checked one.
install_binary() {
    target=$dir/attach-node
    if [ -f "$target" ] && [ "$(sha256_of "$target")" = "$want" ]; then
        say "$target already has the expected sha256: not downloaded again"
        return
    fi
    say "downloading $name from $base"
    fetch "$base/$name" "$tmp/$name"
    got=$(sha256_of "$tmp/$name")
    [ "$got" = "$want" ] ||
        die 4 "sha256 mismatch for $name: expected $want, got $got; nothing was installed"
    mkdir -p "$dir" || die 6 "cannot create $dir"
    staged=$(mktemp "$dir/.attach-node.XXXXXX") || die 6 "cannot write to $dir"
    { cp "$tmp/$name" "$staged" && chmod 0755 "$staged" && mv -f "$staged" "$target"; } ||
        die 6 "cannot install $target"
    staged=
    say "installed $target (sha256 $want)"
}

main() {
    hide_tokens
    check_args "$@"
    read_settings
    detect_arch
    need curl
    need sha256sum
    name=attach-node-$version-$arch

    trap cleanup EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    tmp=$(mktemp -d)
    expected_sha256
    install_binary
    cleanup
    trap - EXIT TERM INT

    if [ -n "$openapi_token" ]; then export ATTACH_NODE_OPENAPI_TOKEN="$openapi_token"; fi
    if [ -n "$bootstrap_token" ]; then export ATTACH_NODE_TOKEN="$bootstrap_token"; fi
    say "running $dir/attach-node join"
    # exec: the join's exit code is this script's.
    exec "$dir/attach-node" join "$@"
}

{ main "$@"; }
