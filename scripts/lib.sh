# Shared by scripts/*: install what is missing, idempotently (apt only when a package is absent).
ensure_pkgs() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "rxray: missing packages: ${missing[*]}; run as root (sudo) so they can be installed" >&2
		return 1
	fi
	echo "rxray: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_cargo() {
	if ! command -v cargo >/dev/null 2>&1; then
		[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
	fi
	command -v cargo >/dev/null 2>&1 || {
		echo "rxray: cargo (Rust 1.87 or newer) is needed to build rxray; install it with rustup" >&2
		return 1
	}
}

# A lab of a benchmark's own, so parallel runs never share or take down each other's: namespaces
# $1-a and $1-b joined by veth-a/veth-b, 198.18.0.1/24 and 198.18.0.2/24, no route anywhere else.
bench_lab_up() {
	local a=$1-a b=$1-b ns i
	ip netns add "$a"
	ip netns add "$b"
	ip link add veth-a netns "$a" type veth peer name veth-b netns "$b"
	ip -n "$a" addr add 198.18.0.1/24 dev veth-a
	ip -n "$b" addr add 198.18.0.2/24 dev veth-b
	for ns in "$a" "$b"; do
		ip -n "$ns" link set lo up
		ip -n "$ns" link set "veth-${ns##*-}" up
	done
	for ((i = 0; i < 50; i++)); do
		ip netns exec "$a" ping -c1 -W1 198.18.0.2 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
}

bench_lab_down() {
	ip netns del "$1-a" 2>/dev/null
	ip netns del "$1-b" 2>/dev/null
	return 0
}
