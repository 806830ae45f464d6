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
#      SetValues over HTTPS with the operator's client certificate succeeds;
#   6. pymodbus, as an independent Modbus TCP client (modbus_client.py), reads, writes and
#      identifies the demo's simulated Modbus controller;
#   7. GetValues through the gateway returns the setpoint pymodbus wrote, and a voltage from the
#      simulated energy meter on Modbus RTU;
#   8. the reverse direction: `iotmc-gateway run` with one Eastron SDM120 whose registers a
#      pymodbus server holds (modbus_server.py); the device is found by SSDP, GetValues returns
#      what pymodbus holds, and follows when the server's voltage changes;
#   8b. firmware: `upnp-client call-action` GetFirmwareInfo shows the demo's signed 1.1.0 image
#      on offer for the demo controller, an operator schedules it over mutual TLS (curl), and
#      GetFirmwareUpdateStatus follows it to Probation with the controller running 1.1.0;
#   9. the diagnostics log (issue 7) through async-upnp-client (diagnostics.py, one `ok`/`FAIL`
#      line per check, each counted here): GetDiagnosticsLog on every virtual device of the demo
#      holds gateway-observed records, and the device's own records exactly when its profile
#      declares `[logs]`; paging with MaximumRecords=1 and NextCursor never repeats or skips a
#      record; on the thermostat, MinimumSeverity=warning and StartTime/EndTime return exactly
#      the matching records (the refused anonymous SetValues of 5 is a security warning); the
#      logs hold the operator's SetValues and the controller's firmware phases of 8b; the
#      GetLogURIs jsonl and text URLs, fetched with curl and ?severity=warning, hold only
#      matching records; ClearDiagnosticsLog is refused over plain HTTP and, over mutual TLS up
#      to a read cursor, removes what was read, keeps what arrived later and adds a "cleared"
#      record;
#   10. a clean stop.
#
# Needs root (ip netns). Prints one line per check and `N passed, N failed` at the end.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=tests/interop/common.sh
. "$here/common.sh"
work="$(mktemp -d -t iotmc-interop-XXXXXX)"
ns="iotmc-interop-$$"
venv="${IOTMC_INTEROP_VENV:-$root/target/interop-venv}"
ASYNC_UPNP_CLIENT_VERSION="0.49.0"
PYMODBUS_VERSION="3.11.4"
passed=0
failed=0
demo_pid=""
server_pid=""
run_pid=""

cleanup() {
    stop_process "$run_pid"
    stop_process "$server_pid"
    stop_process "$demo_pid"
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for tool in ip curl gssdp-discover python3; do
    command -v "$tool" >/dev/null || { echo "interop: $tool is missing (install iproute2, curl, gupnp-tools, python3)" >&2; exit 2; }
done
require_root

if [[ ! -x "$venv/bin/upnp-client" ]] || ! "$venv/bin/pip" show async-upnp-client 2>/dev/null | grep -q "^Version: $ASYNC_UPNP_CLIENT_VERSION$" \
    || ! "$venv/bin/pip" show pymodbus 2>/dev/null | grep -q "^Version: $PYMODBUS_VERSION$"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "async-upnp-client==$ASYNC_UPNP_CLIENT_VERSION" "pymodbus==$PYMODBUS_VERSION"
fi
upnp_client=("$venv/bin/upnp-client" --timeout 5)

build_gateway

make_namespace

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

# 6. pymodbus as an independent Modbus TCP client of the demo's Modbus TCP simulator (the demo
# controller, unit 1). modbus_client.py prints one `ok`/`FAIL` line per check; each counts here.
modbus_tcp_addr="$(sed -nE 's/^Modbus TCP simulator on ([0-9.]+:[0-9]+) .*/\1/p' "$work/demo.out")"
check "the demo prints its Modbus TCP simulator's address ($modbus_tcp_addr)" test -n "$modbus_tcp_addr"
modbus_setpoint="23.4"
client_rc=0
in_ns "$venv/bin/python" "$here/modbus_client.py" "$modbus_tcp_addr" --unit 1 --setpoint "$modbus_setpoint" \
    >"$work/modbus_client.out" 2>&1 || client_rc=$?
count_checks pymodbus "$work/modbus_client.out"
client_checks="$(grep -c '^ok   ' "$work/modbus_client.out" || true)"
check "the pymodbus client passed all its 7 checks and exited 0" test "$client_rc" = 0 -a "${client_checks:-0}" = 7

# 7. The same devices through the gateway: GetValues reads the device (not the 5 s poll's
# cache), so it returns the setpoint pymodbus wrote; the energy meter is on the Modbus RTU pty.
get_values() { # description URL, output file, parameter path...
    local url="$1" out="$2"; shift 2
    local list='<cms:ContentPathList xmlns:cms="urn:schemas-upnp-org:dm:cms">'
    for path in "$@"; do list+="<ContentPath>$path</ContentPath>"; done
    list+='</cms:ContentPathList>'
    in_ns "${upnp_client[@]}" call-action "$url" ConfigurationManagement/GetValues "Parameters=$list" >"$out" 2>>"$work/client.log" || true
}
value_in() { # file, parameter name → its value in a GetValues answer
    sed -nE "s|.*<ParameterPath>/IoTMC/Parameters/$2</ParameterPath><Value>([^<]*)</Value>.*|\1|p" "$1"
}
controller_url="$(url_of 'Demo controller')"
meter_url="$(url_of 'Energy meter')"
get_values "$controller_url" "$work/controller.json" /IoTMC/Parameters/setpoint
check "GetValues on the demo controller returns the setpoint pymodbus wrote ($modbus_setpoint)" \
    grep -q "ParameterPath>/IoTMC/Parameters/setpoint</ParameterPath><Value>$modbus_setpoint</Value>" "$work/controller.json"
get_values "$meter_url" "$work/meter.json" /IoTMC/Parameters/voltage
meter_voltage="$(value_in "$work/meter.json" voltage)"
check "GetValues on the energy meter (Modbus RTU) returns a voltage ($meter_voltage V)" \
    awk -v v="$meter_voltage" 'BEGIN { exit !(v ~ /^[0-9]+(\.[0-9]+)?$/ && v >= 100 && v <= 300) }'

# 8. The reverse direction: the gateway's Modbus adapter against pymodbus as the server. The
# server (an Eastron SDM120 register map) prints `listening on ADDR` once it listens and then
# takes `set NAME VALUE` lines on standard input (a FIFO here); a gateway of its own
# (`iotmc-gateway run`, SSDP on the namespace's port 1900 beside the demo's) serves it as a UPnP
# device.
mkfifo "$work/server.in"
# Not through in_ns: $! must be the server itself.
ip netns exec "$ns" "$venv/bin/python" "$here/modbus_server.py" --port 0 --unit 1 \
    <"$work/server.in" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
exec {server_in}>"$work/server.in"
server_says() { # regex: the server prints a matching line within 10 s
    for _ in $(seq 1 100); do
        grep -qE "$1" "$work/server.out" 2>/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -qE "$1" "$work/server.out" 2>/dev/null
}
server_says '^listening on ' || true
server_addr="$(sed -nE 's/^listening on ([0-9.]+:[0-9]+)$/\1/p' "$work/server.out")"
check "the pymodbus SDM120 server listens ($server_addr)" test -n "$server_addr"
mkdir -p "$work/run-state"
cat >"$work/gateway.toml" <<TOML
[gateway]
id = "interop-pymodbus"
name = "iotmc-gateway interop (pymodbus server)"
state_dir = "$work/run-state"
profile_dirs = ["$root/device-profiles"]
shutdown_grace = "5s"

[listen]
interfaces = ["lo"]
http = "127.0.0.1:0"
https = "127.0.0.1:0"

[[devices]]
id = "meter-pymodbus"
name = "SDM120 on pymodbus"
profile = "eastron-sdm120"
address = "tcp://$server_addr?unit=1"
TOML
config_check() { "$gateway" config check "$work/gateway.toml" >"$work/config-check.txt" 2>&1; }
check "config check accepts the gateway config" config_check
# Not through in_ns: $! must be the gateway itself.
ip netns exec "$ns" "$gateway" --log-format json run --config "$work/gateway.toml" 2>"$work/run.log" &
run_pid=$!
for _ in $(seq 1 300); do
    grep -q '"message":"gateway ready"' "$work/run.log" 2>/dev/null && break
    kill -0 "$run_pid" 2>/dev/null || break
    sleep 0.1
done
check "iotmc-gateway run gets ready with the pymodbus meter attached" \
    grep -q '"message":"gateway ready","devices":1,"attached":1' "$work/run.log"
run_http="$(grep '"message":"UPnP face serving"' "$work/run.log" | sed -nE 's/.*"http":"([0-9.]+:[0-9]+)".*/\1/p' || true)"
# Find the meter as a control point does: SSDP search, then the description at each LOCATION
# this gateway answered with (the demo's devices answer the same search).
run_meter_url=""
for _ in 1 2 3; do
    in_ns "${upnp_client[@]}" search --bind 127.0.0.1 >"$work/run-search.json" 2>>"$work/client.log" || true
    for location in $(grep -oE "\"location\": \"http://${run_http:-none}/[^\"]*\"" "$work/run-search.json" | cut -d'"' -f4 | sort -u); do
        if in_ns curl -s "$location" | grep -q '<friendlyName>SDM120 on pymodbus</friendlyName>'; then
            run_meter_url="$location"
        fi
    done
    [[ -n "$run_meter_url" ]] && break
done
check "upnp-client search finds the pymodbus meter on the new gateway ($run_meter_url)" test -n "$run_meter_url"
in_ns curl -s "${run_meter_url:-http://none/}" >"$work/run-description.xml" 2>/dev/null || true
check "the meter's description carries the serial number pymodbus holds in 0xFC00-0xFC01 (u32)" \
    grep -q '<serialNumber>20240042</serialNumber>' "$work/run-description.xml"
get_values "$run_meter_url" "$work/run-values.json" /IoTMC/Parameters/
check "GetValues through the gateway returns voltage 230.5 (input 0x0000, f32)" \
    grep -q 'ParameterPath>/IoTMC/Parameters/voltage</ParameterPath><Value>230.5</Value>' "$work/run-values.json"
check "GetValues through the gateway returns frequency 50 (input 0x0046, f32)" \
    grep -q 'ParameterPath>/IoTMC/Parameters/frequency</ParameterPath><Value>50</Value>' "$work/run-values.json"
sdm120_values() { # every SDM120 parameter against what modbus_server.py holds
    local bad=0 pair name want got
    for pair in voltage=230.5 current=4.25 active_power=960 power_factor=0.98 frequency=50 \
        import_active_energy=1234.5 export_active_energy=0 total_active_energy=1234.5 meter_id=1 \
        baud_rate=9600 parity_stop=none-1; do
        name="${pair%=*}"; want="${pair#*=}"; got="$(value_in "$work/run-values.json" "$name")"
        # Exact: an f32 is reported as its shortest decimal (0.98, not 0.9800000190734863).
        [[ "$got" == "$want" ]] || { echo "  $name: got '$got', wanted $want" >&2; bad=1; }
    done
    return "$bad"
}
check "GetValues returns all 11 SDM120 parameters as pymodbus holds them" sdm120_values
server_set() { # name value: the server confirms the change
    kill -0 "$server_pid" 2>/dev/null || return 1
    printf 'set %s %s\n' "$1" "$2" >&"$server_in" || return 1
    server_says "^set $1 $2\$"
}
check "the pymodbus server's voltage changes to 229.9" server_set voltage 229.9
get_values "$run_meter_url" "$work/run-after.json" /IoTMC/Parameters/voltage
run_voltage="$(value_in "$work/run-after.json" voltage)"
check "GetValues follows the change: voltage is 229.9 exactly, the f32's shortest decimal (got $run_voltage)" test "$run_voltage" = 229.9
kill -TERM "$run_pid" 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
check "the gateway stops on SIGTERM within 10 s" bash -c "! kill -0 $run_pid 2>/dev/null"
check "the gateway logs that it stopped" grep -q '"message":"stopped"' "$work/run.log"
kill -TERM "$server_pid" 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
exec {server_in}>&-
check "the pymodbus server stops on SIGTERM within 10 s" bash -c "! kill -0 $server_pid 2>/dev/null"
check "the pymodbus server says it stopped" grep -qx 'stopped' "$work/server.out"

# 8b. Firmware on the demo controller through async-upnp-client: the demo imports a signed
# 1.1.0 image; an operator schedules it over mutual TLS; the two-bank controller boots it on
# test and enters probation (24 h in the demo, so it ends there).
in_ns "${upnp_client[@]}" call-action "$controller_url" FirmwareUpdate/GetFirmwareInfo >"$work/fw-info.json" 2>>"$work/client.log" || true
check "GetFirmwareInfo offers the demo image 1.1.0" grep -q '"OfferedVersion": "1.1.0"' "$work/fw-info.json"
check "GetFirmwareInfo reports the running version 1.0.0" grep -q '"RunningVersion": "1.0.0"' "$work/fw-info.json"
controller_udn="$(udn_of "$controller_url")"
vendor_urn="urn:iotmc-gateway-local:service:FirmwareUpdate:1"
schedule_body="<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:ScheduleFirmwareUpdate xmlns:u=\"$vendor_urn\"><StartTime>$(date -u +%Y-%m-%dT%H:%M:%SZ)</StartTime><ImageSha256></ImageSha256></u:ScheduleFirmwareUpdate></s:Body></s:Envelope>"
code="$(in_ns curl -s -o "$work/fw-schedule.xml" -w '%{http_code}' --cacert "$pki/ca.pem" --cert "$pki/operator.pem" --key "$pki/operator.key" \
    -H 'Content-Type: text/xml; charset="utf-8"' -H "SOAPACTION: \"$vendor_urn#ScheduleFirmwareUpdate\"" \
    --data "$schedule_body" "https://$https_addr/upnp/$controller_udn/FirmwareUpdate/control" || true)"
check "ScheduleFirmwareUpdate over mutual TLS answers an UpdateId" grep -q '<UpdateId>fw-[0-9a-f]*</UpdateId>' "$work/fw-schedule.xml"
firmware_status() {
    in_ns "${upnp_client[@]}" call-action "$controller_url" FirmwareUpdate/GetFirmwareUpdateStatus >"$work/fw-status.json" 2>>"$work/client.log" || true
    grep -q '"Status": "Probation"' "$work/fw-status.json"
}
for _ in $(seq 1 120); do firmware_status && break; sleep 0.5; done
check "the update reaches Probation (status polled with upnp-client)" firmware_status
check "GetFirmwareUpdateStatus names the end of probation" grep -qE '"ProbationEnds": "[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$work/fw-status.json"
in_ns "${upnp_client[@]}" call-action "$controller_url" FirmwareUpdate/GetFirmwareInfo >"$work/fw-info-after.json" 2>>"$work/client.log" || true
check "the controller now runs 1.1.0 on test" grep -q '"RunningVersion": "1.1.0"' "$work/fw-info-after.json"

# 9. The diagnostics log through async-upnp-client. diagnostics.py prints one `ok`/`FAIL` line
# per check (and information lines, indented); each check counts here.
# Every virtual device of the demo (its table, without the gateway's own line) and the profile it
# is served with: the device's own records are expected exactly when the profile has `[logs]`.
declare -A profile_of=(
    ["Demo thermostat (simulated)"]="src/demo/thermostat.toml"
    ["Demo relay (simulated)"]="src/demo/relay.toml"
    ["Demo controller (Modbus TCP)"]="device-profiles/modbus/iotmc-demo-controller.toml"
    ["Energy meter (Modbus RTU)"]="device-profiles/modbus/eastron-sdm120.toml"
    ["Fan plug (Tasmota)"]="device-profiles/mqtt/tasmota-plug.toml"
    ["Room thermostat (Homie)"]="device-profiles/mqtt/homie-thermostat.toml"
    ["AHU controller (MQTT 5)"]="device-profiles/mqtt/iotmc-mqtt5-controller.toml"
)
declares_log() { # profile file: it has a [logs] table whose method is not "none"
    awk '/^\[/ { in_logs = ($0 == "[logs]") } in_logs && /^method *= *"none"/ { none = 1 }
        $0 == "[logs]" { logs = 1 } END { exit !(logs && !none) }' "$root/$1"
}
virtual_devices="$(awk '/ http:\/\/.*\/description\.xml$/ && !/^iotmc-gateway demo / {
    url = $NF; sub(/ +[^ ]+ +[^ ]+$/, ""); print $0 "|" url }' "$work/demo.out")"
device_count="$(grep -c . <<<"$virtual_devices" || true)"
unknown_devices="$(while IFS='|' read -r name _; do [[ -n "${profile_of[$name]:-}" ]] || echo "$name"; done <<<"$virtual_devices")"
check "the demo lists ${#profile_of[@]} virtual devices, each with its profile known here (found $device_count${unknown_devices:+; unknown: $unknown_devices})" \
    test "$device_count" = "${#profile_of[@]}" -a -z "$unknown_devices"
while IFS='|' read -r name url; do
    profile="${profile_of[$name]:-}"
    [[ -n "$profile" ]] || continue
    native=no
    declares_log "$profile" && native=yes
    diag device "$name" "$url" --native "$native"
done <<<"$virtual_devices"
both_kinds() { ! declares_log "${profile_of[Energy meter (Modbus RTU)]}" && declares_log "${profile_of[Demo thermostat (simulated)]}"; }
check "the demo has devices with a log of their own and without (the energy meter's profile declares none)" both_kinds
# Filters, on the thermostat: section 5's refused anonymous SetValues is a security warning.
diag filters "Demo thermostat" "$thermostat_url" --refused SetValues
# Gateway-observed events of the earlier sections, and the device's own record of the write.
diag holds "Demo thermostat" "$thermostat_url" --what "the operator's SetValues (notice, with the operator) and the device's own record of the write" \
    --record "source=gateway,category=operational,severity=notice,action=SetValues,operator=CN=demo operator" \
    --record "source=device,message~setpoint set to 22.5"
diag holds "Demo controller" "$controller_url" --what "the firmware update's phases in order, Scheduled to Probation (category firmware)" \
    --record "source=gateway,category=firmware,phase=Scheduled,version=1.1.0" \
    --record "source=gateway,category=firmware,phase=Rebooting,version=1.1.0" \
    --record "source=gateway,category=firmware,phase=Probation,version=1.1.0"
# The HTTP log: GetLogURIs through async-upnp-client, then curl with a severity filter.
in_ns "${upnp_client[@]}" call-action "$thermostat_url" BasicManagement/GetLogURIs >"$work/log-uris.json" 2>>"$work/client.log" || true
log_uris="$(sed -nE 's/.*"LogURIs": "([^"]*)".*/\1/p' "$work/log-uris.json")"
jsonl_url="$(tr ',' '\n' <<<"$log_uris" | grep '/log\.jsonl$' || true)"
text_url="$(tr ',' '\n' <<<"$log_uris" | grep '/log\.txt$' || true)"
check "GetLogURIs lists the thermostat's log.jsonl and log.txt on the gateway's HTTP address" \
    test "$jsonl_url" = "http://$http_addr/upnp/$thermostat_udn/Diagnostics/log.jsonl" -a "$text_url" = "http://$http_addr/upnp/$thermostat_udn/Diagnostics/log.txt"
in_ns curl -s -D "$work/log-jsonl.headers" -o "$work/log.jsonl" "${jsonl_url:-http://none/}?severity=warning" || true
diag http "Demo thermostat" "$thermostat_url" --body "$work/log.jsonl" --headers "$work/log-jsonl.headers" --severity warning
in_ns curl -s -o "$work/log.txt" "${text_url:-http://none/}?severity=warning" || true
text_severities() { # the text log: one line per record, `TIME SEVERITY source/category #SEQ ...`
    local bad
    [[ -s "$work/log.txt" ]] || { echo "  an empty text log" >&2; return 1; }
    bad="$(awk '$2 !~ /^(emergency|alert|critical|error|warning)$/ || $4 !~ /^#[0-9]+$/' "$work/log.txt")"
    [[ -z "$bad" ]] || { echo "  lines of another form or below warning: $bad" >&2; return 1; }
    grep -q ' warning gateway/security #[0-9]* SetValues refused' "$work/log.txt"
}
check "log.txt?severity=warning holds one line per record, warnings and worse only, the refused SetValues among them" text_severities
# Clearing up to a read cursor: read everything, then a record arrives (another refused anonymous
# SetValues), an anonymous clear is refused, and the operator clears over mutual TLS.
diag snapshot "Demo thermostat" "$thermostat_url" --out "$work/log-snapshot.json"
clear_cursor="$(sed -n 's/^cursor //p' "$diag_out")"
code="$(in_ns curl -s -o /dev/null -w '%{http_code}' "${soap_headers[@]}" --data "$(set_values 27)" "http://$http_addr$control" || true)"
check "another anonymous SetValues is refused after the read (HTTP $code)" test "$code" = 500
clear_body="<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:ClearDiagnosticsLog xmlns:u=\"urn:iotmc-gateway-local:service:Diagnostics:1\"><UpToCursor>$clear_cursor</UpToCursor></u:ClearDiagnosticsLog></s:Body></s:Envelope>"
clear_headers=(-H 'Content-Type: text/xml; charset="utf-8"' -H 'SOAPACTION: "urn:iotmc-gateway-local:service:Diagnostics:1#ClearDiagnosticsLog"')
clear_path="/upnp/$thermostat_udn/Diagnostics/control"
code="$(in_ns curl -s -o "$work/clear-anon.xml" -w '%{http_code}' "${clear_headers[@]}" --data "$clear_body" "http://$http_addr$clear_path" || true)"
check "ClearDiagnosticsLog over plain HTTP is refused with UPnPError 606 (HTTP $code)" \
    grep -q '<errorCode>606</errorCode>' "$work/clear-anon.xml"
code="$(in_ns curl -s -o "$work/clear-mtls.xml" -w '%{http_code}' --cacert "$pki/ca.pem" --cert "$pki/operator.pem" --key "$pki/operator.key" \
    "${clear_headers[@]}" --data "$clear_body" "https://$https_addr$clear_path" || true)"
check "ClearDiagnosticsLog up to the read cursor ($clear_cursor) over mutual TLS succeeds (HTTP $code)" \
    grep -q 'ClearDiagnosticsLogResponse' "$work/clear-mtls.xml"
diag cleared "Demo thermostat" "$thermostat_url" --snapshot "$work/log-snapshot.json" --kept SetValues

# 10. A clean stop: SIGTERM, ssdp:byebye, "Demo stopped." within the 5 s grace (and a margin).
kill -TERM "$demo_pid"
for _ in $(seq 1 100); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
check "the demo stops on SIGTERM within 10 s" bash -c "! kill -0 $demo_pid 2>/dev/null"
check "the demo says it stopped" grep -q '^Demo stopped.$' "$work/demo.out"

if [[ "$failed" -gt 0 ]]; then
    echo "--- demo output"; cat "$work/demo.out"
    echo "--- demo log (last 40 lines)"; tail -n 40 "$work/demo.log"
    echo "--- client log (last 20 lines)"; tail -n 20 "$work/client.log" 2>/dev/null || true
    echo "--- pymodbus client"; cat "$work/modbus_client.out" 2>/dev/null || true
    echo "--- pymodbus server"; cat "$work/server.out" "$work/server.log" 2>/dev/null || true
    echo "--- firmware"; cat "$work/fw-info.json" "$work/fw-schedule.xml" "$work/fw-status.json" 2>/dev/null || true
    echo "--- diagnostics.py"; cat "$work"/diag-*.out 2>/dev/null || true
    echo "--- config check"; cat "$work/config-check.txt" 2>/dev/null || true
    echo "--- iotmc-gateway run log (last 40 lines)"; tail -n 40 "$work/run.log" 2>/dev/null || true
fi
echo "interop: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
