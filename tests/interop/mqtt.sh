#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2013 # `$state`, `$description`: Homie topic names in single quotes; URLs have no spaces
# MQTT interoperability against Debian's mosquitto (DESIGN.md §10, issue 5):
#   - mosquitto 2.x as the broker, started here with three listeners: 1883 plain (anonymous),
#     8883 TLS, 8884 mutual TLS (client certificate required, its CN as user name);
#   - mosquitto_pub / mosquitto_sub as independent MQTT clients;
#   - async-upnp-client (upnp-client, from run.sh's venv) and curl as UPnP control points.
#
# Everything runs inside a network namespace of its own (fixed ports are fine there), and
#   A. `iotmc-gateway demo --mqtt-broker 127.0.0.1:1883` runs its simulated Tasmota plug, Homie 5
#      thermostat and MQTT 5 controller against mosquitto: mosquitto_sub sees their retained
#      availability; GetValues answers for all three; SetValues over mutual TLS switches the
#      plug (an independent client asks the plug and sees it) and changes the Homie setpoint
#      (its retained property on the broker follows);
#   B. malformed payloads injected with mosquitto_pub (not JSON, 70 KB, JSON of the wrong shape,
#      a wrong-type Homie value, a broken non-retained $description, unexpected topics below
#      each device): the gateway stays up, GetValues still answers, and the log says what it
#      ignored and where; a 300 KB payload above the gateway's max_packet_size never reaches it
#      (mosquitto honours the MQTT 5 Maximum Packet Size) and its connection stays up;
#   C. mosquitto is frozen (SIGSTOP), a Reboot of the Homie thermostat is started, and once the
#      gateway runs it mosquitto is SIGKILLed: a read meanwhile fails at once naming the broker;
#      mosquitto is started again; the Reboot returns within 40 s (success, or a UPnPError about
#      the broker connection), and the gateway and the simulators come back;
#   D. `iotmc-gateway run` with brokers over TLS (CA), mutual TLS (CA + client certificate),
#      mutual TLS without a client certificate, and with a rogue CA's client certificate:
#      GetValues works through the first two; the log names the other two with a TLS reason;
#   E. the diagnostics log (issue 7) with errors injected: mosquitto is stopped, GetValues on each
#      of the demo's MQTT devices fails with a UPnPError 7xx naming the broker and the devices go
#      Offline; mosquitto is started again; then async-upnp-client (diagnostics.py, one `ok`/
#      `FAIL` line per check, each counted here) calls GetDiagnosticsLog with
#      MinimumSeverity=error from the cursor read before the stop, and gets those failures back
#      (source gateway, category error) and nothing less severe, exactly the unfiltered log's
#      errors; the unfiltered log holds the Offline warning.
#
# Needs root (ip netns) and mosquitto, mosquitto-clients, openssl, curl, iproute2, python3
# (installed by .ci/run). Prints one line per check and `N passed, N failed` at the end.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=tests/interop/common.sh
. "$here/common.sh"
work="$(mktemp -d -t iotmc-mqtt-interop-XXXXXX)"
ns="iotmc-mqtt-$$"
venv="${IOTMC_INTEROP_VENV:-$root/target/interop-venv}"
ASYNC_UPNP_CLIENT_VERSION="0.49.0"
passed=0
failed=0
broker_pid=""
demo_pid=""
run_pid=""
action_pid=""
sub_pids=()

cleanup() {
    local pid
    stop_process "$action_pid"
    for pid in "${sub_pids[@]}"; do stop_process "$pid"; done
    stop_process "$run_pid"
    stop_process "$demo_pid"
    stop_process "$broker_pid"
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
for tool in ip curl python3 openssl mosquitto_pub mosquitto_sub "$mosquitto_bin"; do
    command -v "$tool" >/dev/null || { echo "interop: $tool is missing (install iproute2, curl, python3, openssl, mosquitto, mosquitto-clients)" >&2; exit 2; }
done
require_root

# The same venv as run.sh (which also installs pymodbus into it); only upnp-client is used here.
if [[ ! -x "$venv/bin/upnp-client" ]] || ! "$venv/bin/pip" show async-upnp-client 2>/dev/null | grep -q "^Version: $ASYNC_UPNP_CLIENT_VERSION$"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "async-upnp-client==$ASYNC_UPNP_CLIENT_VERSION"
fi
upnp_client=("$venv/bin/upnp-client" --timeout 10)

build_gateway

make_namespace

# ---------------------------------------------------------------------------------------------
# The broker: a PKI (CA, broker certificate for 127.0.0.1, the gateway's client certificate, and
# a client certificate of another CA), and mosquitto with its three listeners.
pki() { # dir
    local d="$1"
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=interop broker CA" \
        -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$d/broker.key" -out "$d/broker.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/broker.ext"
    openssl x509 -req -in "$d/broker.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/broker.ext" -out "$d/broker.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=iotmc-gateway" \
        -keyout "$d/gateway.key" -out "$d/gateway.csr" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
    openssl x509 -req -in "$d/gateway.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/client.ext" -out "$d/gateway.pem" 2>/dev/null
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=rogue CA" \
        -keyout "$d/rogue-ca.key" -out "$d/rogue-ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=rogue" \
        -keyout "$d/rogue.key" -out "$d/rogue.csr" 2>/dev/null
    openssl x509 -req -in "$d/rogue.csr" -CA "$d/rogue-ca.pem" -CAkey "$d/rogue-ca.key" -CAcreateserial -days 2 \
        -extfile "$d/client.ext" -out "$d/rogue.pem" 2>/dev/null
    chmod 600 "$d"/*.key
}
bpki="$work/broker-pki"
pki "$bpki"
# Run as root, mosquitto drops privileges unless told `user root`, and then cannot read the
# 0600 keys. No persistence: a restarted broker has forgotten every retained message, and the
# devices must publish theirs again.
cat >"$work/mosquitto.conf" <<CONF
user root
per_listener_settings true
persistence false
log_dest file $work/mosquitto.log
log_timestamp_format %H:%M:%S

listener 1883 127.0.0.1
allow_anonymous true

listener 8883 127.0.0.1
allow_anonymous true
cafile $bpki/ca.pem
certfile $bpki/broker.pem
keyfile $bpki/broker.key

listener 8884 127.0.0.1
allow_anonymous false
require_certificate true
use_identity_as_username true
cafile $bpki/ca.pem
certfile $bpki/broker.pem
keyfile $bpki/broker.key
CONF

port_open() { # port: something accepts TCP connections on 127.0.0.1:port in the namespace
    in_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}
start_broker() { # starts mosquitto; true once its three listeners accept connections (10 s)
    # Not through in_ns: $! must be mosquitto itself.
    ip netns exec "$ns" "$mosquitto_bin" -c "$work/mosquitto.conf" >>"$work/mosquitto.out" 2>&1 &
    broker_pid=$!
    disown "$broker_pid" # C kills it: no "Killed" line from the shell
    for _ in $(seq 1 100); do
        kill -0 "$broker_pid" 2>/dev/null || return 1
        port_open 1883 && port_open 8883 && port_open 8884 && return 0
        sleep 0.1
    done
    return 1
}
check "mosquitto starts with plain, TLS and mutual-TLS listeners (1883, 8883, 8884)" start_broker
if [[ "$failed" -gt 0 ]]; then
    cat "$work/mosquitto.out" "$work/mosquitto.log" >&2 2>/dev/null || true
    echo "mqtt interop: $passed passed, $failed failed (mosquitto did not start; nothing else can run)"; exit 1
fi

pub() { in_ns mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 "$@"; }
retained() { # topic: the retained message of topic (empty when there is none, after 3 s)
    in_ns mosquitto_sub -h 127.0.0.1 -p 1883 -t "$1" -C 1 -W 3 --retained-only 2>/dev/null || true
}
# A mosquitto_sub -v in the background, writing to $work/sub-NAME.txt; ready when this returns
# (it has received a message on its own sync topic, so it has subscribed to all its topics).
sub_start() { # name topic...
    local name="$1" t; shift
    local args=(-h 127.0.0.1 -p 1883 -v -t "iotmc-interop/sync/$name")
    for t in "$@"; do args+=(-t "$t"); done
    # Not through in_ns: $! must be mosquitto_sub itself.
    ip netns exec "$ns" mosquitto_sub "${args[@]}" >"$work/sub-$name.txt" 2>&1 &
    sub_pids+=($!)
    for _ in $(seq 1 50); do
        pub -t "iotmc-interop/sync/$name" -m sync 2>/dev/null || true
        grep -q "^iotmc-interop/sync/$name sync$" "$work/sub-$name.txt" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
sub_says() { # name, extended regex, seconds: a line of the subscriber matches within the time
    for _ in $(seq 1 $(($3 * 10))); do
        grep -qE "$2" "$work/sub-$1.txt" 2>/dev/null && return 0
        sleep 0.1
    done
    grep -qE "$2" "$work/sub-$1.txt" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# A. The demo's simulated MQTT devices on mosquitto.
# The MQTT adapter logs messages it ignores on purpose (unexpected topics) at debug: B needs them.
# Not through in_ns: $! must be the gateway itself.
RUST_LOG="info,iotmc_adapter_mqtt=debug" ip netns exec "$ns" "$gateway" --log-format json \
    demo --mqtt-broker 127.0.0.1:1883 >"$work/demo.out" 2>"$work/demo.log" &
demo_pid=$!
demo_ready() { # within 30 s
    for _ in $(seq 1 300); do
        grep -q '^Demo ready in' "$work/demo.out" 2>/dev/null && return 0
        kill -0 "$demo_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
check "the demo gets ready with its MQTT devices on mosquitto" demo_ready
if [[ "$failed" -gt 0 ]]; then
    cat "$work/demo.out" >&2; tail -n 40 "$work/demo.log" >&2
    echo "mqtt interop: $passed passed, $failed failed (the demo did not get ready; nothing else can run)"; exit 1
fi
check "the demo says its MQTT devices use the broker 127.0.0.1:1883" grep -q '^MQTT broker on 127.0.0.1:1883 ' "$work/demo.out"

url_of() { # friendly name → description URL from the demo's table (protocol mqtt)
    awk -v name="$1" 'index($0, name) == 1 && $(NF-1) == "mqtt" { print $NF }' "$work/demo.out"
}
plug_url="$(url_of 'Fan plug (Tasmota)')"
thermostat_url="$(url_of 'Room thermostat (Homie)')"
ahu_url="$(url_of 'AHU controller (MQTT 5)')"
check "the demo lists the Tasmota plug as an mqtt device ($plug_url)" test -n "$plug_url"
check "the demo lists the Homie thermostat as an mqtt device ($thermostat_url)" test -n "$thermostat_url"
check "the demo lists the MQTT 5 controller as an mqtt device ($ahu_url)" test -n "$ahu_url"
udn_of() { sed -E 's|.*/upnp/([0-9a-f-]+)/description.xml|\1|' <<<"$1"; }
plug_udn="$(udn_of "$plug_url")"
thermostat_udn="$(udn_of "$thermostat_url")"
https_addr="$(sed -nE 's/^HTTPS on ([0-9.:]+);.*/\1/p' "$work/demo.out")"
dpki="$(sed -nE 's/^HTTPS on .* CA (.*)\/ca.pem$/\1/p' "$work/demo.out")"

check "mosquitto_sub sees the plug's retained LWT Online (tele/tasmota_demo_plug/LWT)" \
    test "$(retained tele/tasmota_demo_plug/LWT)" = Online
check "mosquitto_sub sees the thermostat's retained \$state ready (homie/5/thermostat-demo/\$state)" \
    test "$(retained 'homie/5/thermostat-demo/$state')" = ready

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
is_number() { [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; }
is_bool() { [[ "$1" =~ ^(0|1|true|false)$ ]]; }
is_word() { [[ "$1" =~ ^[a-z_]+$ ]]; }
answers() { # label, url, name:test...: GetValues of the named parameters, each passing its test
    local label="$1" url="$2" spec name test value bad=0 paths=(); shift 2
    for spec in "$@"; do paths+=("/IoTMC/Parameters/${spec%%:*}"); done
    get_values "$url" "$work/values-$label.json" "${paths[@]}"
    for spec in "$@"; do
        name="${spec%%:*}"; test="${spec#*:}"
        value="$(value_in "$work/values-$label.json" "$name")"
        "$test" "$value" || { echo "  $label: $name is '$value', not $test" >&2; bad=1; }
    done
    return "$bad"
}
plug_answers() { answers plug "$plug_url" power:is_bool voltage:is_number active_power:is_number; }
thermostat_answers() { answers thermostat "$thermostat_url" setpoint:is_number temperature:is_number mode:is_word; }
ahu_answers() { answers ahu "$ahu_url" supply_temperature:is_number setpoint:is_number supply_fan_speed:is_number; }
check "GetValues on the Tasmota plug returns power, voltage and active power" plug_answers
check "GetValues on the Homie thermostat returns setpoint, temperature and mode" thermostat_answers
check "GetValues on the MQTT 5 controller returns supply temperature, setpoint and fan speed" ahu_answers

# SetValues over HTTPS with the demo's operator certificate (state-changing actions need it).
envelope() { # service, action, arguments (XML)
    printf '%s' "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:$2 xmlns:u=\"urn:schemas-upnp-org:service:$1:2\">$3</u:$2></s:Body></s:Envelope>"
}
set_values_args() { # parameter name, value
    printf '%s' "<ParameterValueList>&lt;cms:ParameterValueList xmlns:cms=&quot;urn:schemas-upnp-org:dm:cms&quot;&gt;&lt;Parameter&gt;&lt;ParameterPath&gt;/IoTMC/Parameters/$1&lt;/ParameterPath&gt;&lt;Value&gt;$2&lt;/Value&gt;&lt;/Parameter&gt;&lt;/cms:ParameterValueList&gt;</ParameterValueList>"
}
operator_call() { # udn, service, action, arguments, output file → prints the HTTP status
    in_ns curl -s -o "$5" -w '%{http_code}' --max-time 60 \
        --cacert "$dpki/ca.pem" --cert "$dpki/operator.pem" --key "$dpki/operator.key" \
        -H 'Content-Type: text/xml; charset="utf-8"' -H "SOAPACTION: \"urn:schemas-upnp-org:service:$2:2#$3\"" \
        --data "$(envelope "$2" "$3" "$4")" "https://$https_addr/upnp/$1/$2/control" || true
}

get_fails_naming_broker() { # http host:port, udn, parameter, seconds: a UPnPError that names the broker, in time
    local code
    code="$(in_ns curl -s -o "$work/failed-get.xml" -w '%{http_code}' --max-time "$4" \
        -H 'Content-Type: text/xml; charset="utf-8"' -H 'SOAPACTION: "urn:schemas-upnp-org:service:ConfigurationManagement:2#GetValues"' \
        --data "$(envelope ConfigurationManagement GetValues "<Parameters>&lt;cms:ContentPathList xmlns:cms=&quot;urn:schemas-upnp-org:dm:cms&quot;&gt;&lt;ContentPath&gt;/IoTMC/Parameters/$3&lt;/ContentPath&gt;&lt;/cms:ContentPathList&gt;</Parameters>")" \
        "http://$1/upnp/$2/ConfigurationManagement/control" || true)"
    sed -nE 's|.*<errorDescription>(.*)</errorDescription>.*|  \1|p' "$work/failed-get.xml" >&2 2>/dev/null || true
    [[ "$code" == 500 ]] && grep -qiE '<errorDescription>[^<]*broker[^<]*</errorDescription>' "$work/failed-get.xml"
}

# The plug: switch it to the opposite of what it is, then ask the plug itself, as any MQTT
# client may: an empty cmnd/<topic>/Power is answered with the relay state on stat/<topic>/RESULT.
case "$(value_in "$work/values-plug.json" power)" in
    1 | true) power_to=false; power_word=OFF ;;
    *) power_to=true; power_word=ON ;;
esac
code="$(operator_call "$plug_udn" ConfigurationManagement SetValues "$(set_values_args power "$power_to")" "$work/set-plug.xml")"
check "SetValues power=$power_to on the plug over mutual TLS answers ChangesApplied (HTTP $code)" \
    grep -q '<Status>ChangesApplied</Status>' "$work/set-plug.xml"
check "mosquitto_sub is ready on stat/tasmota_demo_plug/RESULT" sub_start plug-result stat/tasmota_demo_plug/RESULT
pub -t cmnd/tasmota_demo_plug/Power -n || true
check "an independent client asks the plug (cmnd/tasmota_demo_plug/Power) and hears POWER $power_word" \
    sub_says plug-result "^stat/tasmota_demo_plug/RESULT \{\"POWER\":\"$power_word\"\}$" 5

# The thermostat: a setpoint it does not have yet; the device publishes the property retained.
setpoint_before="$(retained homie/5/thermostat-demo/thermostat/setpoint)"
setpoint_to=23.5
[[ "$setpoint_before" == 23.5 ]] && setpoint_to=24
code="$(operator_call "$thermostat_udn" ConfigurationManagement SetValues "$(set_values_args setpoint "$setpoint_to")" "$work/set-thermostat.xml")"
check "SetValues setpoint=$setpoint_to on the Homie thermostat over mutual TLS answers ChangesApplied (HTTP $code)" \
    grep -q '<Status>ChangesApplied</Status>' "$work/set-thermostat.xml"
check "the thermostat's retained homie/5/thermostat-demo/thermostat/setpoint is now $setpoint_to (was $setpoint_before)" \
    test "$(retained homie/5/thermostat-demo/thermostat/setpoint)" = "$setpoint_to"

# ---------------------------------------------------------------------------------------------
# B. Malformed payloads and unexpected topics, injected with mosquitto_pub (never retained).
log_mark() { wc -l <"$work/demo.log"; }
logged_since() { # mark, fixed string, extended regex: a log line after mark has both (10 s)
    for _ in $(seq 1 100); do
        tail -n "+$(($1 + 1))" "$work/demo.log" | grep -F -- "$2" | grep -qiE -- "$3" && return 0
        sleep 0.1
    done
    return 1
}
demo_alive() { kill -0 "$demo_pid" 2>/dev/null; }
inject() { # label, topic, expected log regex (or - for none), answers function, mosquitto_pub payload args...
    local label="$1" topic="$2" says="$3" answers_fn="$4" mark; shift 4
    mark="$(log_mark)"
    check "mosquitto_pub delivers $label on $topic" pub -t "$topic" "$@"
    if [[ "$says" != - ]]; then
        check "the log says why $label on $topic was ignored, naming the topic" logged_since "$mark" "$topic" "$says"
    fi
    check "the gateway is still up after $label on $topic" demo_alive
    check "GetValues still answers after $label on $topic" "$answers_fn"
}
head -c 71680 /dev/zero | tr '\0' 'x' >"$work/70k.txt"
inject "text that is not JSON" tele/tasmota_demo_plug/SENSOR 'ignored|json' plug_answers -m 'ENERGY: 230 V, not JSON {'
inject "a 70 KB payload" stat/tasmota_demo_plug/RESULT 'ignored|bytes|large' plug_answers -f "$work/70k.txt"
# Above the gateway's max_packet_size (262144 by default): the gateway told mosquitto its
# Maximum Packet Size when it connected (MQTT 5), so mosquitto must not deliver it.
head -c 307200 /dev/zero | tr '\0' 'x' >"$work/300k.txt"
drops_before="$(grep -c '"message":"connection dropped"' "$work/demo.log" || true)"
inject "a 300 KB payload" tele/tasmota_demo_plug/SENSOR - plug_answers -f "$work/300k.txt"
check "the gateway's broker connection stays up: mosquitto kept the 300 KB message from it (MQTT 5 Maximum Packet Size)" \
    test "$(grep -c '"message":"connection dropped"' "$work/demo.log" || true)" = "$drops_before"
inject "JSON of the wrong shape" tele/tasmota_demo_plug/STATE 'ignored' plug_answers -m '["POWER","ON"]'
inject "an unexpected telemetry topic" tele/tasmota_demo_plug/NOSUCH 'ignored|not mapped' plug_answers -m '{"x":1}'
inject "an unexpected topic" stat/tasmota_demo_plug/NOSUCH/deeper 'ignored|unexpected' plug_answers -m '{"x":1}'
inject "a wrong-type value (text for a float)" homie/5/thermostat-demo/thermostat/setpoint 'ignored|keeps|float' thermostat_answers -m warm
check "the setpoint keeps its value ($setpoint_to) after the wrong-type value" \
    test "$(value_in "$work/values-thermostat.json" setpoint)" = "$setpoint_to"
inject "a broken \$description (not retained)" 'homie/5/thermostat-demo/$description' 'description' thermostat_answers -m '{"homie":"5.0","nodes":{"thermostat":'
inject "an unexpected property" homie/5/thermostat-demo/nosuchnode/nosuchproperty 'ignored|no parameter' thermostat_answers -m 1
inject "an unexpected topic" homie/5/thermostat-demo/thermostat/setpoint/a/b 'ignored|no Homie' thermostat_answers -m 1
inject "text that is not JSON" iotmc/ahu/ahu-5/state 'ignored|json' ahu_answers -m 'supply 18.9 C'
inject "an unexpected topic" iotmc/ahu/ahu-5/nosuch '-' ahu_answers -m '{"x":1}'
check "the retained setpoint on the broker is still $setpoint_to" \
    test "$(retained homie/5/thermostat-demo/thermostat/setpoint)" = "$setpoint_to"

# ---------------------------------------------------------------------------------------------
# C. The broker dies in the middle of an action. mosquitto is frozen (SIGSTOP) so that nothing
# the gateway sends gets an answer; a Reboot of the Homie thermostat (which waits for the device
# to leave `ready`, within the action's 30 s) is started over mutual TLS; once the gateway logs
# that it runs the action, mosquitto is SIGKILLed, and started again once the gateway noticed.
drops_before="$(grep -c '"message":"connection dropped"' "$work/demo.log" || true)"
mark="$(log_mark)"
kill -STOP "$broker_pid"
action_started=$EPOCHREALTIME
(
    operator_call "$thermostat_udn" BasicManagement Reboot "" "$work/reboot.xml" >"$work/reboot.code"
    echo "$EPOCHREALTIME" >"$work/reboot.end"
) &
action_pid=$!
check "the gateway runs the Reboot while mosquitto is frozen" logged_since "$mark" '"message":"state-changing action"' '"action":"Reboot"'
check "the Reboot has not returned when mosquitto is killed" test ! -e "$work/reboot.end"
kill -KILL "$broker_pid" 2>/dev/null || true
gone() { ! kill -0 "$broker_pid" 2>/dev/null; }
for _ in $(seq 1 50); do gone && break; sleep 0.1; done
check "mosquitto is gone after SIGKILL" gone
gateway_noticed() { # the gateway logged a new dropped connection (10 s)
    local now
    for _ in $(seq 1 100); do
        now="$(grep -c '"message":"connection dropped"' "$work/demo.log" || true)"
        [[ "${now:-0}" -gt "${drops_before:-0}" ]] && return 0
        sleep 0.1
    done
    return 1
}
check "the gateway logs that its broker connection dropped" gateway_noticed
# A read while the broker is down is answered at once, and says why.
demo_http="$(sed -E 's|http://([^/]+)/.*|\1|' <<<"$plug_url")"
check "GetValues on the plug while the broker is down fails within 15 s with a UPnPError naming the broker" \
    get_fails_naming_broker "$demo_http" "$plug_udn" power 15
check "mosquitto starts again" start_broker
action_returned() { [[ -e "$work/reboot.end" ]]; }
while ! action_returned && awk -v a="$action_started" -v now="$EPOCHREALTIME" 'BEGIN { exit !(now - a < 40) }'; do
    sleep 0.1
done
check "the Reboot returns within 40 s of its start" action_returned
if action_returned; then
    took="$(awk -v a="$action_started" -v b="$(cat "$work/reboot.end")" 'BEGIN { printf "%.1f", b - a }')"
else
    took="more than 40"
fi
reboot_outcome() { # success, or a UPnPError whose description names the broker connection
    local code
    code="$(cat "$work/reboot.code" 2>/dev/null || true)"
    if [[ "$code" == 200 ]]; then
        echo "  the Reboot succeeded (HTTP 200)" >&2; return 0
    fi
    sed -nE 's|.*<errorDescription>(.*)</errorDescription>.*|  the Reboot failed: \1|p' "$work/reboot.xml" >&2 2>/dev/null || true
    [[ "$code" == 500 ]] && grep -qiE '<errorDescription>[^<]*broker[^<]*</errorDescription>' "$work/reboot.xml"
}
check "the Reboot ($took s) succeeded or failed with a UPnPError about the broker connection" reboot_outcome
wait "$action_pid" 2>/dev/null || true
action_pid=""
check "the gateway is still up after the broker restart" demo_alive
comes_back() { # command...: passes within 30 s (tried once a second; the last try's complaints shown)
    local deadline=$((${EPOCHREALTIME%.*} + 30))
    while [[ "${EPOCHREALTIME%.*}" -lt "$deadline" ]]; do
        "$@" 2>/dev/null && return 0
        sleep 1
    done
    "$@"
}
plug_online() { test "$(retained tele/tasmota_demo_plug/LWT)" = Online; }
thermostat_ready() { test "$(retained 'homie/5/thermostat-demo/$state')" = ready; }
check "the plug is back on the restarted broker (retained LWT Online)" comes_back plug_online
check "the thermostat is back on the restarted broker (retained \$state ready)" comes_back thermostat_ready
reconnected() { # the gateway's driver logged `connected` after its last `connection dropped`
    awk '/"message":"connection dropped"/ { dropped = NR } /"message":"connected"/ { connected = NR }
        END { exit !(dropped && connected > dropped) }' "$work/demo.log"
}
check "the gateway logs that it connected to the broker again" comes_back reconnected
check "GetValues on the Tasmota plug works again after the broker restart" comes_back plug_answers
check "GetValues on the Homie thermostat works again after the broker restart" comes_back thermostat_answers
check "GetValues on the MQTT 5 controller works again after the broker restart" comes_back ahu_answers

# ---------------------------------------------------------------------------------------------
# D. `iotmc-gateway run` over TLS and mutual TLS, beside the demo (same namespace and SSDP port).
# The plug and the thermostat the demo simulates on the plain listener are reached here through
# the TLS listeners of the same mosquitto; one device sits behind each broker that must fail.
mkdir -p "$work/run-state"
cat >"$work/gateway.toml" <<TOML
[gateway]
id = "interop-mqtt-tls"
name = "iotmc-gateway interop (mosquitto over TLS)"
state_dir = "$work/run-state"
profile_dirs = ["$root/device-profiles"]
shutdown_grace = "5s"

[listen]
interfaces = ["lo"]
http = "127.0.0.1:0"
https = "127.0.0.1:0"

[[mqtt.brokers]]
name = "tls"
host = "127.0.0.1"
port = 8883
client_id = "iotmc-interop-tls"
tls = { ca = "$bpki/ca.pem" }

[[mqtt.brokers]]
name = "mtls"
host = "127.0.0.1"
port = 8884
client_id = "iotmc-interop-mtls"
tls = { ca = "$bpki/ca.pem", certificate = "$bpki/gateway.pem", key = "$bpki/gateway.key" }

[[mqtt.brokers]]
name = "mtls-nocert"
host = "127.0.0.1"
port = 8884
client_id = "iotmc-interop-nocert"
tls = { ca = "$bpki/ca.pem" }

[[mqtt.brokers]]
name = "rogue"
host = "127.0.0.1"
port = 8884
client_id = "iotmc-interop-rogue"
tls = { ca = "$bpki/ca.pem", certificate = "$bpki/rogue.pem", key = "$bpki/rogue.key" }

[[devices]]
id = "plug-tls"
name = "Plug over TLS"
profile = "athom-plug-v2-tasmota"
address = "mqtt://tls/tasmota_demo_plug"

[[devices]]
id = "thermostat-mtls"
name = "Thermostat over mutual TLS"
profile = "homie-thermostat"
address = "mqtt://mtls/thermostat-demo"

[[devices]]
id = "plug-nocert"
name = "Plug behind a broker without client certificate"
profile = "athom-plug-v2-tasmota"
address = "mqtt://mtls-nocert/tasmota_nocert"

[[devices]]
id = "thermostat-rogue"
name = "Thermostat behind a rogue client certificate"
profile = "homie-thermostat"
address = "mqtt://rogue/thermostat-rogue"
TOML
broker_mark="$(wc -l <"$work/mosquitto.log")"
broker_says() { tail -n "+$((broker_mark + 1))" "$work/mosquitto.log" | grep -q -- "$1"; }
config_check() { "$gateway" config check "$work/gateway.toml" >"$work/config-check.txt" 2>&1; }
check "config check accepts the TLS and mutual-TLS broker config" config_check
# Not through in_ns: $! must be the gateway itself.
ip netns exec "$ns" "$gateway" --log-format json run --config "$work/gateway.toml" 2>"$work/run.log" &
run_pid=$!
for _ in $(seq 1 300); do
    grep -q '"message":"gateway ready"' "$work/run.log" 2>/dev/null && break
    kill -0 "$run_pid" 2>/dev/null || break
    sleep 0.1
done
check "iotmc-gateway run gets ready with its 4 MQTT devices" grep -q '"message":"gateway ready","devices":4' "$work/run.log"
run_http="$(grep '"message":"UPnP face serving"' "$work/run.log" | sed -nE 's/.*"http":"([0-9.]+:[0-9]+)".*/\1/p' || true)"
# Find the devices as a control point does: SSDP search, then the description at each LOCATION
# this gateway answered with (the demo's devices answer the same search).
find_devices() {
    local location
    in_ns "${upnp_client[@]}" search --bind 127.0.0.1 >"$work/run-search.json" 2>>"$work/client.log" || true
    for location in $(grep -oE "\"location\": \"http://${run_http:-none}/[^\"]*\"" "$work/run-search.json" | cut -d'"' -f4 | sort -u); do
        in_ns curl -s "$location" >"$work/description.xml" || continue
        grep -q '<friendlyName>Plug over TLS</friendlyName>' "$work/description.xml" && tls_plug_url="$location"
        grep -q '<friendlyName>Thermostat over mutual TLS</friendlyName>' "$work/description.xml" && mtls_thermostat_url="$location"
        grep -q '<friendlyName>Thermostat behind a rogue client certificate</friendlyName>' "$work/description.xml" && rogue_url="$location"
    done
    [[ -n "$tls_plug_url" && -n "$mtls_thermostat_url" && -n "$rogue_url" ]]
}
tls_plug_url=""; mtls_thermostat_url=""; rogue_url=""
for _ in 1 2 3; do find_devices && break; done
check "upnp-client search finds the plug behind TLS on the new gateway ($tls_plug_url)" test -n "$tls_plug_url"
check "upnp-client search finds the thermostat behind mutual TLS on the new gateway ($mtls_thermostat_url)" test -n "$mtls_thermostat_url"
tls_plug_answers() { # the relay state the plug itself reports to an independent client
    local want
    answers tls-plug "${tls_plug_url:-http://none/}" power:is_bool voltage:is_number || return 1
    case "$(value_in "$work/values-tls-plug.json" power)" in 1 | true) want=ON ;; *) want=OFF ;; esac
    [[ "$want" == "$power_word" ]] || { echo "  the plug over TLS says power $want, the plug said $power_word" >&2; return 1; }
}
mtls_thermostat_answers() { # the setpoint the thermostat holds retained on the broker
    local want got
    answers mtls-thermostat "${mtls_thermostat_url:-http://none/}" setpoint:is_number temperature:is_number || return 1
    want="$(retained homie/5/thermostat-demo/thermostat/setpoint)"
    got="$(value_in "$work/values-mtls-thermostat.json" setpoint)"
    [[ -n "$want" && "$got" == "$want" ]] || { echo "  setpoint over mutual TLS '$got', retained on the broker '$want'" >&2; return 1; }
}
check "GetValues through TLS (8883, CA only) returns the plug's values and its relay state ($power_word)" comes_back tls_plug_answers
check "GetValues through mutual TLS (8884, client certificate) returns the thermostat's retained setpoint" comes_back mtls_thermostat_answers
broker_logged() { # broker name, extended regex: a log line of that broker's connection matches
    grep -F "\"broker\":\"$1\"" "$work/run.log" | grep -qiE -- "$2"
}
check "the log says the gateway connected to broker tls" comes_back broker_logged tls '"message":"connected"'
check "the log says the gateway connected to broker mtls" comes_back broker_logged mtls '"message":"connected"'
tls_reason='"message":"could not connect".*(tls|certificate)|(tls|certificate).*"message":"could not connect"'
check "the log names broker mtls-nocert with a TLS / certificate reason" comes_back broker_logged mtls-nocert "$tls_reason"
check "the log names broker rogue with a TLS / certificate reason" comes_back broker_logged rogue "$tls_reason"
check "the log never says the gateway connected to broker mtls-nocert" bash -c "! grep -F '\"broker\":\"mtls-nocert\"' '$work/run.log' | grep -q '\"message\":\"connected\"'"
check "the log never says the gateway connected to broker rogue" bash -c "! grep -F '\"broker\":\"rogue\"' '$work/run.log' | grep -q '\"message\":\"connected\"'"
check "mosquitto refused the rogue client certificate" broker_says 'certificate verify failed'
check "mosquitto refused the connection without a client certificate" broker_says 'peer did not return a certificate'
# A read of the device behind the rogue certificate: an answer in bounded time, a UPnPError.
rogue_udn="$(udn_of "${rogue_url:-none}")"
check "GetValues on the device behind broker rogue fails within 30 s with a UPnPError naming the broker" \
    get_fails_naming_broker "${run_http:-none}" "$rogue_udn" setpoint 30
check "the gateway is still up" kill -0 "$run_pid"
kill -TERM "$run_pid" 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
check "the TLS gateway stops on SIGTERM within 10 s" bash -c "! kill -0 $run_pid 2>/dev/null"
check "the TLS gateway logs that it stopped" grep -q '"message":"stopped"' "$work/run.log"

# ---------------------------------------------------------------------------------------------
# E. Diagnostics: errors injected by stopping mosquitto, read back filtered through
# async-upnp-client. diagnostics.py prints one `ok`/`FAIL` line per check (and information
# lines, indented); each check counts here.
ahu_udn="$(udn_of "$ahu_url")"
# label, description URL, UDN, a parameter GetValues reads
mqtt_devices=(
    "Fan plug (Tasmota)|$plug_url|$plug_udn|power"
    "Room thermostat (Homie)|$thermostat_url|$thermostat_udn|setpoint"
    "AHU controller (MQTT 5)|$ahu_url|$ahu_udn|supply_temperature"
)
declare -A log_cursor
for entry in "${mqtt_devices[@]}"; do
    IFS='|' read -r label url _ _ <<<"$entry"
    diag cursor "$label" "$url"
    log_cursor[$label]="$(sed -n 's/^cursor //p' "$diag_out")"
done
drops_before="$(grep -c '"message":"connection dropped"' "$work/demo.log" || true)"
kill -TERM "$broker_pid" 2>/dev/null || true
for _ in $(seq 1 100); do gone && break; sleep 0.1; done
check "mosquitto stops on SIGTERM" gone
check "the gateway logs that its broker connection dropped again" gateway_noticed
get_fails_with_7xx() { # udn, parameter: a UPnPError 7xx (a device error) that names the broker
    get_fails_naming_broker "$demo_http" "$1" "$2" 15 && grep -qE '<errorCode>7[0-9]{2}</errorCode>' "$work/failed-get.xml"
}
for entry in "${mqtt_devices[@]}"; do
    IFS='|' read -r label _ udn parameter <<<"$entry"
    check "GetValues on the $label while mosquitto is stopped fails within 15 s with a UPnPError 7xx naming the broker" \
        get_fails_with_7xx "$udn" "$parameter"
done
check "mosquitto starts again" start_broker
check "GetValues on the Tasmota plug works again" comes_back plug_answers
check "GetValues on the Homie thermostat works again" comes_back thermostat_answers
check "GetValues on the MQTT 5 controller works again" comes_back ahu_answers
for entry in "${mqtt_devices[@]}"; do
    IFS='|' read -r label url _ _ <<<"$entry"
    diag errors "$label" "$url" --cursor "${log_cursor[$label]:-none}" --action GetValues
done

# A clean stop of the demo.
kill -TERM "$demo_pid"
for _ in $(seq 1 100); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
check "the demo stops on SIGTERM within 10 s" bash -c "! kill -0 $demo_pid 2>/dev/null"
check "the demo says it stopped" grep -q '^Demo stopped.$' "$work/demo.out"

if [[ "$failed" -gt 0 ]]; then
    echo "--- demo output"; cat "$work/demo.out"
    echo "--- demo log, warnings and errors (last 40)"; grep -E '"level":"(WARN|ERROR)"' "$work/demo.log" | tail -n 40 || true
    echo "--- client log (last 20 lines)"; tail -n 20 "$work/client.log" 2>/dev/null || true
    echo "--- mosquitto log (last 30 lines)"; tail -n 30 "$work/mosquitto.log" 2>/dev/null || true
    echo "--- config check"; cat "$work/config-check.txt" 2>/dev/null || true
    echo "--- diagnostics.py"; cat "$work"/diag-*.out 2>/dev/null || true
    echo "--- iotmc-gateway run log, warnings and errors (last 40)"; grep -E '"level":"(WARN|ERROR)"' "$work/run.log" 2>/dev/null | tail -n 40 || true
    [[ -n "${IOTMC_INTEROP_KEEP:-}" ]] && { cp -r "$work" "$IOTMC_INTEROP_KEEP"; echo "--- files kept in $IOTMC_INTEROP_KEEP"; }
fi
echo "mqtt interop: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
