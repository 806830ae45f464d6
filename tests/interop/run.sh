#!/usr/bin/env bash
# Interoperability with real third-party UPnP peers (DESIGN.md §10):
#   - async-upnp-client (the UPnP library Home Assistant uses), from PyPI into a local venv;
#   - gupnp-tools' gssdp-discover and curl, from Debian (installed by .ci/run).
#
# Starts `iotmc-gateway demo` inside a network namespace of its own whose loopback interface
# has multicast enabled, so SSDP runs on the real port 1900 without touching the host's
# network, and asserts that:
#   1. `upnp-client search` finds every virtual device and the gateway;
#   2. `upnp-client call-action` GetDeviceStatus and GetValues return the right values;
#   3. `upnp-client subscribe` receives the initial event and an event after the simulated
#      thermostat changes a value;
#   4. `gssdp-discover` lists the devices;
#   5. an unauthenticated SetValues is refused (UPnPError 606) and nothing changes, and a
#      SetValues over HTTPS with the operator's client certificate succeeds.
#
# Needs root (ip netns). Prints one line per check and `N passed, N failed` at the end.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d -t iotmc-interop-XXXXXX)"
ns="iotmc-interop-$$"
venv="${IOTMC_INTEROP_VENV:-$root/target/interop-venv}"
ASYNC_UPNP_CLIENT_VERSION="0.49.0"
passed=0
failed=0
demo_pid=""

cleanup() {
    if [[ -n "$demo_pid" ]] && kill -0 "$demo_pid" 2>/dev/null; then
        kill -TERM "$demo_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$demo_pid" 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

check() { # name, command...
    local name="$1"; shift
    if "$@"; then
        echo "ok   $name"; passed=$((passed + 1))
    else
        echo "FAIL $name"; failed=$((failed + 1))
    fi
}

for tool in ip curl gssdp-discover python3; do
    command -v "$tool" >/dev/null || { echo "interop: $tool is missing (install iproute2, curl, gupnp-tools, python3)" >&2; exit 2; }
done
if [[ "$(id -u)" != 0 ]]; then
    echo "interop: needs root for ip netns" >&2; exit 2
fi

if [[ ! -x "$venv/bin/upnp-client" ]] || ! "$venv/bin/pip" show async-upnp-client 2>/dev/null | grep -q "^Version: $ASYNC_UPNP_CLIENT_VERSION$"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "async-upnp-client==$ASYNC_UPNP_CLIENT_VERSION"
fi
upnp_client=("$venv/bin/upnp-client" --timeout 5)

(cd "$root" && cargo build --quiet --locked --bin iotmc-gateway)
gateway="$root/target/debug/iotmc-gateway"

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link set lo multicast on
ip -n "$ns" route add 224.0.0.0/4 dev lo
in_ns() { ip netns exec "$ns" "$@"; }

# Not through the in_ns function: $! must be the gateway itself (ip netns exec execs it).
ip netns exec "$ns" "$gateway" demo --change-every 1s >"$work/demo.out" 2>"$work/demo.log" &
demo_pid=$!
for _ in $(seq 1 300); do
    grep -q '^Demo ready in' "$work/demo.out" 2>/dev/null && break
    kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.log" >&2; echo "interop: the demo exited" >&2; exit 1; }
    sleep 0.1
done
grep -q '^Demo ready in' "$work/demo.out" || { cat "$work/demo.out" "$work/demo.log" >&2; echo "interop: the demo did not get ready" >&2; exit 1; }

url_of() { grep "^$1" "$work/demo.out" | awk '{print $NF}'; }
gateway_url="$(url_of 'iotmc-gateway demo')"
thermostat_url="$(url_of 'Demo thermostat')"
relay_url="$(url_of 'Demo relay')"
udn_of() { sed -E 's|.*/upnp/([0-9a-f-]+)/description.xml|\1|' <<<"$1"; }
udns=("$(udn_of "$gateway_url")" "$(udn_of "$thermostat_url")" "$(udn_of "$relay_url")")
https_addr="$(sed -nE 's/^HTTPS on ([0-9.:]+);.*/\1/p' "$work/demo.out")"
pki="$(sed -nE 's/^HTTPS on .* CA (.*)\/ca.pem$/\1/p' "$work/demo.out")"
thermostat_udn="${udns[1]}"
http_addr="$(sed -E 's|http://([^/]+)/.*|\1|' <<<"$thermostat_url")"

# 1. SSDP search with async-upnp-client.
in_ns "${upnp_client[@]}" search --bind 127.0.0.1 >"$work/search.json" 2>"$work/search.log" || true
for udn in "${udns[@]}"; do
    check "upnp-client search finds uuid:$udn" grep -q "\"_udn\": \"uuid:$udn\"" "$work/search.json"
done
check "search responses carry the management-capabilities header" \
    grep -q '"MANAGEMENT.iotmc-gateway.local": "config,firmware,diagnostics,lifecycle"' "$work/search.json"

# 2. Actions with async-upnp-client.
in_ns "${upnp_client[@]}" call-action "$thermostat_url" BasicManagement/GetDeviceStatus >"$work/status.json" 2>>"$work/client.log" || true
check "GetDeviceStatus answers OK" grep -q '"DeviceStatus": "OK,' "$work/status.json"
paths='<cms:ContentPathList xmlns:cms="urn:schemas-upnp-org:dm:cms"><ContentPath>/IoTMC/Parameters/setpoint</ContentPath><ContentPath>/UPnP/DM/DeviceInfo/ModelName</ContentPath></cms:ContentPathList>'
in_ns "${upnp_client[@]}" call-action "$thermostat_url" ConfigurationManagement/GetValues "Parameters=$paths" >"$work/values.json" 2>>"$work/client.log" || true
check "GetValues returns the setpoint" grep -q 'ParameterPath>/IoTMC/Parameters/setpoint</ParameterPath><Value>21</Value>' "$work/values.json"
check "GetValues returns the model name" grep -q '<Value>Simulated thermostat</Value>' "$work/values.json"

# 3. Eventing with async-upnp-client: the initial event and one after the thermostat's
# temperature drifts (every second in the demo). `subscribe` runs until stopped.
in_ns timeout 8 "${upnp_client[@]}" subscribe "$thermostat_url" ConfigurationManagement >"$work/events.json" 2>>"$work/client.log" || true
events="$(grep -c '"ConfigurationUpdate"' "$work/events.json" || true)"
check "subscribe receives the initial event and a change event ($events events)" test "${events:-0}" -ge 2
check "a change event names the changed parameter" grep -qE '"ConfigurationUpdate": "[0-9]+,[0-9T:.-]+Z,/IoTMC/Parameters/temperature"' "$work/events.json"

# 4. gssdp-discover (GUPnP) on the namespace's multicast loopback.
in_ns timeout 10 gssdp-discover -i lo -n 4 >"$work/gssdp.txt" 2>&1 || true
for udn in "${udns[@]}"; do
    check "gssdp-discover lists uuid:$udn" grep -q "USN: *uuid:$udn" "$work/gssdp.txt"
done

# 5. Authorisation: plain HTTP may not change state; HTTPS with the operator certificate may.
set_values() { # setpoint
    printf '%s' "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:SetValues xmlns:u=\"urn:schemas-upnp-org:service:ConfigurationManagement:2\"><ParameterValueList>&lt;cms:ParameterValueList xmlns:cms=&quot;urn:schemas-upnp-org:dm:cms&quot;&gt;&lt;Parameter&gt;&lt;ParameterPath&gt;/IoTMC/Parameters/setpoint&lt;/ParameterPath&gt;&lt;Value&gt;$1&lt;/Value&gt;&lt;/Parameter&gt;&lt;/cms:ParameterValueList&gt;</ParameterValueList></u:SetValues></s:Body></s:Envelope>"
}
soap_headers=(-H 'Content-Type: text/xml; charset="utf-8"' -H 'SOAPACTION: "urn:schemas-upnp-org:service:ConfigurationManagement:2#SetValues"')
control="/upnp/$thermostat_udn/ConfigurationManagement/control"
code="$(in_ns curl -s -o "$work/anon.xml" -w '%{http_code}' "${soap_headers[@]}" --data "$(set_values 25)" "http://$http_addr$control" || true)"
check "unauthenticated SetValues is refused with HTTP 500" test "$code" = 500
check "the refusal is UPnPError 606 and says how to authenticate" \
    grep -q '<errorCode>606</errorCode><errorDescription>SetValues changes device state and needs an authenticated operator' "$work/anon.xml"
code="$(in_ns curl -s -o "$work/mtls.xml" -w '%{http_code}' --cacert "$pki/ca.pem" --cert "$pki/operator.pem" --key "$pki/operator.key" \
    "${soap_headers[@]}" --data "$(set_values 22.5)" "https://$https_addr$control" || true)"
check "SetValues over mutual TLS succeeds" test "$code" = 200
check "SetValues over mutual TLS answers ChangesApplied" grep -q '<Status>ChangesApplied</Status>' "$work/mtls.xml"
in_ns "${upnp_client[@]}" call-action "$thermostat_url" ConfigurationManagement/GetValues "Parameters=$paths" >"$work/after.json" 2>>"$work/client.log" || true
check "the thermostat now holds the operator's setpoint, not the refused one" \
    grep -q 'ParameterPath>/IoTMC/Parameters/setpoint</ParameterPath><Value>22.5</Value>' "$work/after.json"
code="$(in_ns curl -s -o /dev/null -w '%{http_code}' --cacert "$pki/ca.pem" "${soap_headers[@]}" --data "$(set_values 26)" "https://$https_addr$control" || true)"
check "SetValues over TLS without a client certificate is refused" test "$code" = 500

# 6. A clean stop: SIGTERM, ssdp:byebye, "Demo stopped." within the 5 s grace (and a margin).
kill -TERM "$demo_pid"
for _ in $(seq 1 100); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
check "the demo stops on SIGTERM within 10 s" bash -c "! kill -0 $demo_pid 2>/dev/null"
check "the demo says it stopped" grep -q '^Demo stopped.$' "$work/demo.out"

if [[ "$failed" -gt 0 ]]; then
    echo "--- demo output"; cat "$work/demo.out"
    echo "--- demo log (last 40 lines)"; tail -n 40 "$work/demo.log"
    echo "--- client log (last 20 lines)"; tail -n 20 "$work/client.log" 2>/dev/null || true
fi
echo "interop: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
