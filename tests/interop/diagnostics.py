#!/usr/bin/env python3
"""async-upnp-client as a control point of the gateway's diagnostics log (issue 7).

Usage: diagnostics.py COMMAND ... (see each command's --help)

  device NAME URL --native yes|no
      GetDiagnosticsLog with no filter: a well-formed log with gateway-observed records
      (source="gateway"), and device-native records (source="device", native="read") exactly
      when the device's profile declares a log (--native yes), else none (native="none"); then
      paging with MaximumRecords=1 and each NextCursor returns every record once, in order.
  filters NAME URL --refused ACTION
      MinimumSeverity=warning, StartTime/EndTime and both together return exactly the records of
      an unfiltered read that match, and the warning holds the security record of the refused
      anonymous ACTION.
  http NAME URL --body FILE --headers FILE --severity SEV
      A log.jsonl answer fetched with curl (body and headers saved by the caller) with
      `?severity=SEV`: JSON lines naming the device, of SEV or more severe only, the same
      records as GetDiagnosticsLog(MinimumSeverity=SEV), X-Next-Cursor, X-Missed and X-More.
  snapshot NAME URL --out FILE
      Reads the whole log and saves its records and NextCursor (for `cleared`); prints
      `cursor VALUE`.
  cleared NAME URL --snapshot FILE --kept ACTION
      After ClearDiagnosticsLog(UpToCursor=the snapshot's cursor): nothing of the snapshot
      remains (no device record read before comes back), the refused anonymous ACTION that
      arrived after the snapshot is kept, the "cleared" record names the cursor, the count and
      the operator, and GetLogInfo counts the cleared records.
  holds NAME URL --what TEXT --record SPEC [--record SPEC ...]
      The log holds a record matching each SPEC (`key=value,...`: source, category, severity,
      `message~` for a part of the message, any other key a field), in the order given.
  cursor NAME URL
      Prints `cursor VALUE`: the NextCursor after every record held now.
  errors NAME URL --cursor CURSOR --action ACTION
      Records after CURSOR: MinimumSeverity=error holds the gateway's error records of the
      failed ACTION (category error) and nothing less severe, exactly the unfiltered read's
      records of error or worse; the unfiltered read holds the device's Offline warning.

Prints one `ok   name` or `FAIL name: why` line per check (other lines are information) and
exits 1 if any failed.
"""

import argparse
import asyncio
import json
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from async_upnp_client.aiohttp import AiohttpRequester
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.exceptions import UpnpActionResponseError

import checks  # tests/interop/checks.py, beside this script

DIAGNOSTICS = "urn:iotmc-gateway-local:service:Diagnostics:1"
BASIC_MANAGEMENT = "urn:schemas-upnp-org:service:BasicManagement:2"
SEVERITIES = ["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"]
# Most pages a paging loop reads beyond the records it expects (records keep arriving).
SPARE_PAGES = 200


def rank(severity):
    """0 (emergency) to 7 (debug); 99 for a name that is not a syslog severity."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 99


class Checks(checks.Checks):
    def explain(self, error):
        if isinstance(error, UpnpActionResponseError):
            return f"UPnPError {error.error_code}: {error.error_desc}"
        return super().explain(error)


class Page:
    """One GetDiagnosticsLog answer, parsed."""

    def __init__(self, log_xml, next_cursor):
        root = ET.fromstring(log_xml)
        if root.tag != "DiagnosticsLog":
            raise ValueError(f"the Log's root element is <{root.tag}>, not <DiagnosticsLog>")
        self.device = root.get("device", "")
        self.missed = int(root.get("missed", "-1"))
        self.more = root.get("more") == "1"
        self.native = root.get("native", "")
        self.next = next_cursor
        self.records = []
        for r in root.findall("Record"):
            self.records.append({
                "seq": int(r.get("seq")),
                "time": r.get("time"),
                "severity": r.get("severity"),
                "source": r.get("source"),
                "category": r.get("category"),
                "message": r.findtext("Message", ""),
                "fields": {f.get("name"): (f.text or "") for f in r.findall("Field")},
            })
        declared = int(root.get("records", "-1"))
        if declared != len(self.records):
            raise ValueError(f"records=\"{declared}\" but the log holds {len(self.records)} <Record>s")

    def seqs(self):
        return [r["seq"] for r in self.records]


def utc(text):
    """A record's time (`2026-11-24T13:33:17.599Z`) as a datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def utc_text(at):
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class Device:
    """A virtual device's Diagnostics and BasicManagement services."""

    def __init__(self, device):
        self.device = device
        self.diagnostics = device.service(DIAGNOSTICS)
        self.basic = device.service(BASIC_MANAGEMENT)

    async def log(self, severity="debug", start="", end="", maximum=0, cursor=""):
        out = await self.diagnostics.async_call_action(
            "GetDiagnosticsLog",
            MinimumSeverity=severity,
            StartTime=start,
            EndTime=end,
            MaximumRecords=maximum,
            Cursor=cursor,
        )
        return Page(out["Log"], out["NextCursor"])

    async def everything(self, severity="debug", start="", end="", cursor=""):
        """Every matching record from `cursor` on, following NextCursor while `more`."""
        records, page = [], None
        for _ in range(100):
            page = await self.log(severity, start, end, 0, cursor)
            records.extend(page.records)
            cursor = page.next
            if not page.more:
                break
        return records, page


async def open_device(url):
    requester = AiohttpRequester(timeout=15)
    factory = UpnpFactory(requester, non_strict=True)
    return Device(await factory.async_create_device(url))


def describe(records, limit=6):
    shown = [f"#{r['seq']} {r['severity']} {r['source']}/{r['category']} {r['message'][:60]!r}" for r in records[:limit]]
    more = f" (+{len(records) - limit} more)" if len(records) > limit else ""
    return "; ".join(shown) + more


def same_seqs(got, want):
    """None when the two lists of records hold the same seqs, else what differs."""
    g, w = {r["seq"] for r in got}, {r["seq"] for r in want}
    if g == w:
        return None
    return f"unexpected {sorted(g - w)[:10]}, missing {sorted(w - g)[:10]}"


async def device_command(checks, name, url, native):
    device = await open_device(url)
    state = {}

    async def whole_log():
        records, page = await device.everything()
        state["records"], state["page"] = records, page
        if not page.device:
            return "the log names no device"
        gateway = [r for r in records if r["source"] == "gateway"]
        if not gateway:
            return f"no record with source=\"gateway\" among {len(records)}: {describe(records)}"
        bad = [r for r in records if r["source"] not in ("gateway", "device") or rank(r["severity"]) > 7]
        if bad:
            return f"records with an unknown source or severity: {describe(bad)}"
        return None

    if not await checks.run(f"{name}: GetDiagnosticsLog holds gateway-observed records (source=gateway)", whole_log):
        return
    records, page = state["records"], state["page"]
    own = [r for r in records if r["source"] == "device"]
    if native:
        async def native_records():
            if page.native != "read":
                return f"native=\"{page.native}\", not \"read\" ({page.device}'s own log was not read)"
            if not own:
                return f"no record with source=\"device\" among {len(records)}: {describe(records)}"
            print(f"     {name} ({page.device}): {len(records)} records, {len(own)} from the device, e.g. {own[0]['message'][:60]!r}")
            return None

        await checks.run(f"{name}: the log holds the device's own records (source=device), its profile declares a log", native_records)
    else:
        async def no_native_records():
            if page.native != "none":
                return f"native=\"{page.native}\", not \"none\", for a device whose profile declares no log"
            if own:
                return f"records with source=\"device\" from a device without a log: {describe(own)}"
            print(f"     {name} ({page.device}): {len(records)} records, all gateway-observed")
            return None

        await checks.run(f"{name}: no device records and native=none, its profile declares no log", no_native_records)

    async def paging():
        # Every record held before paging starts comes back exactly once, in seq order, one per
        # page, while new records may keep arriving.
        held = {r["seq"] for r in records}
        seen, cursor, pages = [], "", 0
        while pages < len(held) + SPARE_PAGES:
            p = await device.log(maximum=1, cursor=cursor)
            pages += 1
            if len(p.records) > 1:
                return f"MaximumRecords=1 answered {len(p.records)} records"
            if not p.next:
                return "an empty NextCursor"
            seen.extend(p.seqs())
            cursor = p.next
            if not p.more and not p.records:
                break
        if len(seen) != len(set(seen)):
            repeated = sorted({s for s in seen if seen.count(s) > 1})
            return f"seqs repeated across pages: {repeated[:10]}"
        if seen != sorted(seen):
            return f"seqs out of order: {seen[:20]}"
        skipped = sorted(held - set(seen))
        if skipped:
            return f"records held before paging were skipped: {skipped[:10]}"
        print(f"     {name}: {pages} pages, seqs {seen[0] if seen else '-'}..{seen[-1] if seen else '-'}")
        return None

    await checks.run(f"{name}: paging with MaximumRecords=1 and NextCursor returns every record once, in order", paging)


async def filters_command(checks, name, url, refused):
    device = await open_device(url)
    everything, _ = await device.everything()
    last = max((r["seq"] for r in everything), default=0)

    def upto_last(records):
        # Records that arrived after the unfiltered read are left out of the comparison.
        return [r for r in records if r["seq"] <= last]

    security = [
        r for r in everything
        if r["source"] == "gateway" and r["category"] == "security" and r["severity"] == "warning"
        and r["fields"].get("action") == refused
    ]

    async def warning_filter():
        got, _ = await device.everything(severity="warning")
        worse = [r for r in got if rank(r["severity"]) > rank("warning")]
        if worse:
            return f"records below warning came back: {describe(worse)}"
        milder = [r for r in everything if rank(r["severity"]) > rank("warning")]
        if not milder:
            return f"the unfiltered log has nothing below warning, so the filter proves nothing: {describe(everything)}"
        if not any(r["seq"] in {s["seq"] for s in security} for r in got):
            return f"the security warning of the refused anonymous {refused} is missing: {describe(got)}"
        return same_seqs(upto_last(got), [r for r in everything if rank(r["severity"]) <= rank("warning")])

    await checks.run(
        f"{name}: MinimumSeverity=warning returns exactly the warnings and worse, among them the refused anonymous {refused} (category security)",
        warning_filter,
    )
    if not security:
        checks.report(f"{name}: the time filters can be checked", False, f"no security record of {refused} to place the window on")
        return
    refused_at = utc(security[0]["time"])
    first_at = min(utc(r["time"]) for r in everything)

    def within(start, end):
        return [r for r in everything if start <= utc(r["time"]) < end]

    async def window(start, end, severity="debug"):
        got, _ = await device.everything(severity=severity, start=utc_text(start), end=utc_text(end))
        outside = [r for r in got if not start <= utc(r["time"]) < end or rank(r["severity"]) > rank(severity)]
        if outside:
            return f"records outside [{utc_text(start)}, {utc_text(end)}) or below {severity}: {describe(outside)}"
        want = [r for r in within(start, end) if rank(r["severity"]) <= rank(severity)]
        if not want:
            return "the window holds no record of the unfiltered read, so it proves nothing"
        return same_seqs(upto_last(got), want)

    one_ms = timedelta(milliseconds=1)
    await checks.run(
        f"{name}: StartTime (inclusive) and EndTime (exclusive) around the refused {refused} return exactly the records of that millisecond",
        lambda: window(refused_at, refused_at + one_ms),
    )

    async def before_refusal():
        why = await window(first_at, refused_at)
        if why is None and any(r["seq"] == security[0]["seq"] for r in within(first_at, refused_at)):
            return "the refusal is inside a window that ends at its own time"
        return why

    await checks.run(
        f"{name}: EndTime at the refused {refused}'s time returns exactly the earlier records, without it",
        before_refusal,
    )
    await checks.run(
        f"{name}: MinimumSeverity=warning with StartTime and EndTime returns exactly the records matching both",
        lambda: window(first_at, refused_at + one_ms, "warning"),
    )


def read_headers(path):
    """The last response's headers in a `curl -D` dump, lower-cased names."""
    headers = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.startswith("HTTP/"):
                headers = {"status": line.split()[1] if len(line.split()) > 1 else ""}
            elif ":" in line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
    return headers


async def http_command(checks, name, url, body_path, headers_path, severity):
    device = await open_device(url)
    headers = read_headers(headers_path)
    lines = []

    async def json_lines():
        if headers.get("status") != "200":
            return f"HTTP status {headers.get('status')}"
        with open(body_path, encoding="utf-8") as f:
            text = f.read()
        if not text.strip():
            return "an empty body"
        for number, line in enumerate(text.splitlines(), 1):
            value = json.loads(line)
            for key in ("seq", "time", "severity", "source", "category", "message", "device"):
                if key not in value:
                    return f"line {number} has no `{key}`: {line[:120]}"
            lines.append(value)
        return None

    if not await checks.run(f"{name}: the log.jsonl answer parses as JSON lines with every field", json_lines):
        return

    async def only_matching():
        worse = [v for v in lines if rank(v["severity"]) > rank(severity)]
        if worse:
            return f"lines below {severity}: {[(v['seq'], v['severity']) for v in worse][:10]}"
        soap, _ = await device.everything(severity=severity)
        names = {v["device"] for v in lines}
        page = await device.log(maximum=1)
        if names != {page.device}:
            return f"lines name {sorted(names)}, the device is {page.device}"
        last = max(v["seq"] for v in lines)
        return same_seqs([r for r in soap if r["seq"] <= last], [{"seq": v["seq"]} for v in lines])

    await checks.run(
        f"{name}: log.jsonl?severity={severity} holds only {severity} or worse, the same records as GetDiagnosticsLog",
        only_matching,
    )

    async def cursor_headers():
        missing = [h for h in ("x-next-cursor", "x-missed", "x-more") if not headers.get(h)]
        if missing:
            return f"missing headers {missing}: {headers}"
        if headers["x-more"] not in ("0", "1") or not headers["x-missed"].isdigit():
            return f"X-More {headers['x-more']!r}, X-Missed {headers['x-missed']!r}"
        return None

    await checks.run(f"{name}: the answer carries X-Next-Cursor, X-Missed and X-More", cursor_headers)


async def snapshot_command(checks, name, url, out):
    device = await open_device(url)

    async def snapshot():
        records, page = await device.everything()
        if not records:
            return "an empty log"
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"cursor": page.next, "records": records}, f)
        print(f"cursor {page.next}")
        return None

    await checks.run(f"{name}: GetDiagnosticsLog reads the whole log and its NextCursor", snapshot)


async def cleared_command(checks, name, url, snapshot_path, kept):
    device = await open_device(url)
    with open(snapshot_path, encoding="utf-8") as f:
        snapshot = json.load(f)
    before = snapshot["records"]
    last = max(r["seq"] for r in before)
    after, _ = await device.everything()

    async def nothing_up_to_cursor():
        old = [r for r in after if r["seq"] <= last]
        if old:
            return f"records up to the cursor (seq {last}) remain: {describe(old)}"
        indices = {r["fields"].get("device_index") for r in before if r["source"] == "device"} - {None}
        back = [r for r in after if r["source"] == "device" and r["fields"].get("device_index") in indices]
        if back:
            return f"device records read before the clear came back: {describe(back)}"
        return None

    await checks.run(f"{name}: after ClearDiagnosticsLog no record up to the cursor remains, none comes back", nothing_up_to_cursor)

    async def later_kept():
        later = [
            r for r in after
            if r["seq"] > last and r["category"] == "security" and r["fields"].get("action") == kept
        ]
        if not later:
            return f"the refused anonymous {kept} that arrived after the read is gone: {describe(after)}"
        return None

    await checks.run(f"{name}: the record that arrived after the read (refused anonymous {kept}) is kept", later_kept)

    async def cleared_record():
        found = [r for r in after if r["source"] == "gateway" and r["message"].startswith("diagnostics log cleared")]
        if len(found) != 1:
            return f"{len(found)} \"cleared\" records: {describe(after)}"
        r = found[0]
        fields = r["fields"]
        if fields.get("cursor") != snapshot["cursor"]:
            return f"it names cursor {fields.get('cursor')!r}, not {snapshot['cursor']!r}"
        if fields.get("removed") != str(len(before)):
            return f"it says {fields.get('removed')} removed, the read held {len(before)}"
        if not fields.get("operator"):
            return f"it names no operator: {fields}"
        if r["category"] != "security":
            return f"category {r['category']}"
        print(f"     {name}: {r['message']!r}, operator {fields['operator']!r}")
        return None

    await checks.run(f"{name}: a \"cleared\" record names the cursor, the number removed and the operator", cleared_record)

    async def log_info():
        out = await device.basic.async_call_action("GetLogInfo")
        root = ET.fromstring(out["LogInfo"])
        cleared = root.findtext("Cleared")
        if cleared != str(len(before)):
            return f"<Cleared>{cleared}</Cleared>, the clear removed {len(before)}"
        return None

    await checks.run(f"{name}: GetLogInfo counts the {len(before)} cleared records", log_info)


def matches(record, spec):
    for pair in spec.split(","):
        if pair.startswith("message~"):
            if pair[len("message~"):] not in record["message"]:
                return False
            continue
        key, _, want = pair.partition("=")
        if key in ("source", "category", "severity"):
            if record[key] != want:
                return False
        elif record["fields"].get(key) != want:
            return False
    return True


async def holds_command(checks, name, url, what, specs):
    device = await open_device(url)

    async def holds():
        records, _ = await device.everything()
        after = 0
        for spec in specs:
            found = [r for r in records if r["seq"] > after and matches(r, spec)]
            if not found:
                return f"no record matching {spec} after seq {after}: {describe(records, 12)}"
            after = found[0]["seq"]
        return None

    await checks.run(f"{name}: the log holds {what}", holds)


async def cursor_command(checks, name, url):
    device = await open_device(url)

    async def cursor():
        _, page = await device.everything()
        print(f"cursor {page.next}")
        return None if page.next else "an empty NextCursor"

    await checks.run(f"{name}: GetDiagnosticsLog gives the cursor after every record held", cursor)


async def errors_command(checks, name, url, cursor, action):
    device = await open_device(url)
    state = {}

    async def errors_only():
        got, _ = await device.everything(severity="error", cursor=cursor)
        state["errors"] = got
        milder = [r for r in got if rank(r["severity"]) > rank("error")]
        if milder:
            return f"records below error came back: {describe(milder)}"
        failed = [
            r for r in got
            if r["source"] == "gateway" and r["category"] == "error" and r["fields"].get("action") == action
        ]
        if not failed:
            return f"no gateway error record of the failed {action}: {describe(got)}"
        code = failed[0]["fields"].get("code", "")
        if not (code.isdigit() and 700 <= int(code) <= 799):
            return f"the failure's code is {code!r}, not a device error 7xx"
        print(f"     {name}: {len(got)} error records since the cursor, e.g. {failed[0]['message'][:100]!r} (code {code})")
        return None

    await checks.run(
        f"{name}: MinimumSeverity=error from the cursor returns the failed {action} calls (source gateway, category error, 7xx) and nothing less severe",
        errors_only,
    )

    async def exactly():
        everything, _ = await device.everything(cursor=cursor)
        state["everything"] = everything
        got = state.get("errors", [])
        last = max((r["seq"] for r in got), default=0)
        want = [r for r in everything if rank(r["severity"]) <= rank("error") and r["seq"] <= last]
        if not [r for r in everything if rank(r["severity"]) > rank("error")]:
            return f"the unfiltered log from the cursor has nothing below error, so the filter proves nothing: {describe(everything)}"
        return same_seqs(got, want)

    await checks.run(f"{name}: they are exactly the records of error or worse of the unfiltered log from the cursor", exactly)

    async def offline_warning():
        everything = state.get("everything", [])
        offline = [r for r in everything if r["fields"].get("availability") == "Offline"]
        if not offline:
            return f"no availability=Offline record since the cursor: {describe(everything, 12)}"
        if offline[0]["severity"] != "warning":
            return f"the Offline record is {offline[0]['severity']}"
        if any(r["seq"] == offline[0]["seq"] for r in state.get("errors", [])):
            return "the Offline warning came back through MinimumSeverity=error"
        return None

    await checks.run(
        f"{name}: the unfiltered log holds the Offline warning, which the error filter left out",
        offline_warning,
    )


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("device", "filters", "http", "snapshot", "cleared", "holds", "cursor", "errors"):
        p = sub.add_parser(command)
        p.add_argument("name", help="how the checks name the device")
        p.add_argument("url", help="the device's description URL")
        if command == "device":
            p.add_argument("--native", choices=["yes", "no"], required=True)
        if command == "filters":
            p.add_argument("--refused", required=True, help="the refused anonymous action")
        if command == "http":
            p.add_argument("--body", required=True)
            p.add_argument("--headers", required=True)
            p.add_argument("--severity", required=True, choices=SEVERITIES)
        if command == "snapshot":
            p.add_argument("--out", required=True)
        if command == "cleared":
            p.add_argument("--snapshot", required=True)
            p.add_argument("--kept", required=True, help="the refused anonymous action after the snapshot")
        if command == "holds":
            p.add_argument("--what", required=True, help="what the records are, for the check's name")
            p.add_argument("--record", action="append", required=True, help="key=value,...")
        if command == "errors":
            p.add_argument("--cursor", required=True)
            p.add_argument("--action", required=True)
    args = parser.parse_args()
    checks = Checks()
    try:
        if args.command == "device":
            await device_command(checks, args.name, args.url, args.native == "yes")
        elif args.command == "filters":
            await filters_command(checks, args.name, args.url, args.refused)
        elif args.command == "http":
            await http_command(checks, args.name, args.url, args.body, args.headers, args.severity)
        elif args.command == "snapshot":
            await snapshot_command(checks, args.name, args.url, args.out)
        elif args.command == "cleared":
            await cleared_command(checks, args.name, args.url, args.snapshot, args.kept)
        elif args.command == "holds":
            await holds_command(checks, args.name, args.url, args.what, args.record)
        elif args.command == "cursor":
            await cursor_command(checks, args.name, args.url)
        elif args.command == "errors":
            await errors_command(checks, args.name, args.url, args.cursor, args.action)
    except Exception as e:  # the device could not even be opened
        checks.report(f"{args.name}: async-upnp-client opens {args.url}", False, f"{type(e).__name__}: {e}")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
