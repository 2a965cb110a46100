# ci/lib/deps.sh — sourced by the ci/ scripts: installs the Debian packages a script needs when
# they are missing (apt-get, as root or through sudo -n; never prompts), so that every script
# works on a fresh Debian 12 machine.
#
#   rk_need NAME PKG...   installs whichever of PKG is missing; NAME prefixes its messages
#
# Build packages every script that compiles raftkv needs are in RK_BUILD_PACKAGES.

# make comes with cmake only as a Recommends, and libc6-dev with gcc only as a Recommends, so
# both are named. libxxhash-dev: XXH3 for kv's hash tables; libinih-dev: raftkv-node --config;
# libssl-dev: TLS (node/tls.c) and libcrypto's SHA-256 of ACL passwords (node/cmd_acl.c);
# openssl: the command that makes the tests' certificates.
RK_BUILD_PACKAGES=(cmake make gcc libc6-dev libxxhash-dev libinih-dev libssl-dev openssl pkg-config)

# Is a package installed? dpkg knows; without dpkg (not Debian) probe for what it provides.
rk_installed() {
    if command -v dpkg-query >/dev/null; then
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
        return
    fi
    case $1 in
    binutils) command -v nm && command -v ar ;;
    libcmocka-dev) pkg-config --exists cmocka ;;
    libxxhash-dev) pkg-config --exists libxxhash ;;
    libinih-dev) pkg-config --exists inih ;;
    libssl-dev) pkg-config --exists 'openssl >= 3.0' ;;
    redis-tools) command -v redis-cli ;;
    libc6-dev) true ;;
    *) command -v "$1" ;;
    esac >/dev/null 2>&1
}

rk_need() {
    local name=$1
    shift
    local missing=() pkg
    for pkg in "$@"; do
        rk_installed "$pkg" || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        echo "$name: all present: $*"
        return 0
    fi
    echo "$name: installing ${missing[*]}"
    local sudo=()
    if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then
        sudo=(sudo -n) # never prompt: CI has no stdin
    elif [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "$name: cannot install ${missing[*]} here (needs apt-get, as root or via sudo)" >&2
        return 1
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q </dev/null &&
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q \
            --no-install-recommends "${missing[@]}" </dev/null
}
