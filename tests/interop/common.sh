# Shared by the interop scripts (run.sh, mqtt.sh); sourced, not run. Each script sets `root`,
# `ns`, `passed=0` and `failed=0`, and keeps its own cleanup trap (it knows its processes).

stop_process() { # pid: SIGTERM, up to 10 s, then SIGKILL
    if [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$1" 2>/dev/null || true
    fi
}

check() { # name, command...: one `ok`/`FAIL` line, counted
    local name="$1"; shift
    if "$@"; then
        echo "ok   $name"; passed=$((passed + 1))
    else
        echo "FAIL $name"; failed=$((failed + 1))
    fi
}

require_root() {
    if [[ "$(id -u)" != 0 ]]; then
        echo "interop: needs root for ip netns" >&2; exit 2
    fi
}

build_gateway() { # sets `gateway` to the debug binary, built from the repository at `root`
    (cd "$root" && cargo build --quiet --locked --bin iotmc-gateway)
    local target_dir="${CARGO_TARGET_DIR:-target}"
    [[ "$target_dir" == /* ]] || target_dir="$root/$target_dir"
    gateway="$target_dir/debug/iotmc-gateway"
}

make_namespace() { # creates `ns` with a multicast-enabled loopback
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link set lo multicast on
    ip -n "$ns" route add 224.0.0.0/4 dev lo
}

in_ns() { ip netns exec "$ns" "$@"; } # command...: run it inside `ns`

count_checks() { # prefix, file: each `ok`/`FAIL` line a peer script printed (checks.py) is a
    # check here; its indented information lines are shown
    local line
    while IFS= read -r line; do
        case "$line" in
            "ok   "*) check "$1: ${line#ok   }" true ;;
            "FAIL "*) check "$1: ${line#FAIL }" false ;;
            "     "*) echo "$line" ;;
        esac
    done <"$2"
}

# diagnostics.py's checks, counted; needs `work`, `venv` and `here`. Sets `diag_out` to the
# file of its output.
diag_runs=0
diag() { # command, name, description URL, options...
    local out="$work/diag-$((++diag_runs))-$1.out" rc=0
    in_ns "$venv/bin/python" "$here/diagnostics.py" "$@" >"$out" 2>&1 || rc=$?
    count_checks diagnostics "$out"
    if [[ "$rc" != 0 ]] && ! grep -q '^FAIL ' "$out"; then
        check "diagnostics.py $1 $2 ran (exit $rc: $(tail -n 1 "$out"))" false
    fi
    diag_out="$out"
}
