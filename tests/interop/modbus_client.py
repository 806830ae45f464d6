#!/usr/bin/env python3
"""pymodbus as an independent Modbus TCP client against the demo's Modbus TCP simulator.

Usage: modbus_client.py HOST:PORT [--unit 1] [--setpoint 23.4]

Checks the "demo controller" (device-profiles/modbus/iotmc-demo-controller.toml, register map in
its header comment) through pymodbus's own codec:
  - input registers 0x0000-0x0004 and holding registers 0x0100-0x0102 decode to plausible values;
  - FC 0x06 writes the setpoint, and a read gives it back;
  - Read Device Identification (FC 0x2B / MEI 0x0E), basic and regular: vendor "iotmc", model
    name "Demo Controller";
  - Write File Record (FC 0x15) to file 1 record 0, then Read File Record (FC 0x14) gives the
    same registers back;
  - a read of an unmapped address gets exception 0x02 (illegal data address).

Prints one `ok   name` or `FAIL name: why` line per check and exits 1 if any failed. The setpoint
written is left in the device, for the caller to look for through the gateway.
"""

import argparse
import asyncio
import sys

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu.file_message import FileRecord

from checks import Checks  # tests/interop/checks.py, beside this script

ILLEGAL_DATA_ADDRESS = 0x02


def i16(word):
    return word - 0x10000 if word & 0x8000 else word


def refused(reply):
    return f"exception 0x{reply.exception_code:02x}" if reply.isError() else None


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="HOST:PORT of the Modbus TCP server")
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--setpoint", type=float, default=23.4, help="°C, written with FC 0x06")
    args = parser.parse_args()
    host, _, port = args.address.rpartition(":")
    unit = args.unit
    checks = Checks()

    client = AsyncModbusTcpClient(host, port=int(port), timeout=3, retries=1)
    if not await client.connect():
        checks.report(f"connect to {args.address}", False, "no connection")
        return 1
    try:
        async def input_registers():
            reply = await client.read_input_registers(0x0000, count=5, device_id=unit)
            if reply.isError():
                return refused(reply)
            w = reply.registers
            supply, ret = i16(w[0]) / 10, i16(w[1]) / 10
            run_hours = (w[3] << 16) | w[4]
            if not (-40 <= supply <= 120 and -40 <= ret <= 120):
                return f"temperatures {supply} / {ret} °C are not plausible ({w})"
            if w[2] & ~0x0001:
                return f"status 0x{w[2]:04x} has reserved bits set"
            print(f"     supply {supply} °C, return {ret} °C, status 0x{w[2]:04x}, "
                  f"run hours {run_hours}", flush=True)
            return None

        await checks.run("FC 0x04 input registers 0x0000-0x0004 decode to plausible values",
                         input_registers)

        async def holding_registers():
            reply = await client.read_holding_registers(0x0100, count=3, device_id=unit)
            if reply.isError():
                return refused(reply)
            w = reply.registers
            setpoint = i16(w[0]) / 10
            if not 5.0 <= setpoint <= 30.0:
                return f"setpoint {setpoint} °C is outside 5..30 ({w})"
            if not 0 <= w[1] <= 100:
                return f"fan speed {w[1]} % is outside 0..100"
            if not 0 <= w[2] <= 3:
                return f"mode {w[2]} is outside 0..3"
            print(f"     setpoint {setpoint} °C, fan {w[1]} %, mode {w[2]}", flush=True)
            return None

        await checks.run("FC 0x03 holding registers 0x0100-0x0102 decode to plausible values",
                         holding_registers)

        async def write_setpoint():
            raw = round(args.setpoint * 10)
            reply = await client.write_register(0x0100, raw, device_id=unit)
            if reply.isError():
                return refused(reply)
            if (reply.address, reply.registers) != (0x0100, [raw]):
                return f"the echo is {reply.address:#06x} {reply.registers}, not 0x0100 [{raw}]"
            back = await client.read_holding_registers(0x0100, count=1, device_id=unit)
            if back.isError():
                return "read back: " + refused(back)
            if back.registers != [raw]:
                return f"read back {back.registers}, wrote [{raw}]"
            return None

        await checks.run(f"FC 0x06 writes the setpoint {args.setpoint} and FC 0x03 reads it back",
                         write_setpoint)

        async def identification(read_code, wanted):
            reply = await client.read_device_information(read_code=read_code, object_id=0x00,
                                                         device_id=unit)
            if reply.isError():
                return refused(reply)
            got = {k: v.decode("latin-1") if isinstance(v, bytes) else v
                   for k, v in reply.information.items()}
            for obj, text in wanted.items():
                if got.get(obj) != text:
                    return f"object 0x{obj:02x} is {got.get(obj)!r}, not {text!r} (all: {got})"
            return None

        await checks.run("FC 0x2B/0x0E basic identification: vendor \"iotmc\"",
                         lambda: identification(0x01, {0x00: "iotmc"}))
        await checks.run("FC 0x2B/0x0E regular identification: model name \"Demo Controller\"",
                         lambda: identification(0x02, {0x00: "iotmc", 0x05: "Demo Controller"}))

        async def file_records():
            data = bytes(range(0x10, 0x30))  # 16 registers, none zero, none alike
            reply = await client.write_file_record(
                [FileRecord(file_number=1, record_number=0, record_data=data)], device_id=unit)
            if reply.isError():
                return "write: " + refused(reply)
            back = await client.read_file_record(
                [FileRecord(file_number=1, record_number=0, record_length=len(data))],
                device_id=unit)
            if back.isError():
                return "read: " + refused(back)
            if len(back.records) != 1 or back.records[0].record_data != data:
                return f"read back {[r.record_data.hex() for r in back.records]}, wrote {data.hex()}"
            return None

        await checks.run("FC 0x15 writes file 1 record 0 and FC 0x14 reads the same registers",
                         file_records)

        async def unmapped():
            reply = await client.read_holding_registers(0x0400, count=1, device_id=unit)
            if not reply.isError():
                return f"answered {reply.registers}"
            if reply.exception_code != ILLEGAL_DATA_ADDRESS:
                return f"exception 0x{reply.exception_code:02x}, not 0x02"
            return None

        await checks.run("FC 0x03 of unmapped holding register 0x0400 gets exception 0x02",
                         unmapped)
    finally:
        client.close()
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
