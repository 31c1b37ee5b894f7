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
