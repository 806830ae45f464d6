#!/usr/bin/env python3
"""pymodbus as an independent Modbus TCP server holding an Eastron SDM120 register map.

Usage: modbus_server.py [--host 127.0.0.1] [--port 0] [--unit 1]

The map is the one device-profiles/modbus/eastron-sdm120.toml's [modbus] section gives: every
value an IEEE 754 single-precision float in two registers, high word first, big-endian bytes
(input registers, FC 0x04: voltage 0x0000, current 0x0006, active power 0x000C, power factor
0x001E, frequency 0x0046, import / export energy 0x0048 / 0x004A, total energy 0x0156; holding
registers, FC 0x03 / 0x10: parity and stop bits 0x0012, meter id 0x0014, baud rate 0x001C),
except the serial number, an unsigned 32-bit integer in holding 0xFC00-0xFC01.

It answers for whole register ranges (input 0x0000-0x0157, holding 0x0000-0x001D; registers
the map does not name read 0), since the profile keeps the default max_gap of 8 and the gateway
reads across such gaps, and with exception 0x02 elsewhere.

Once listening it prints `listening on HOST:PORT` (port 0 asks the OS for a free one). It then
reads commands from standard input, one a line, and answers each with one line:
    set NAME VALUE   sets a float parameter (e.g. `set voltage 229.9`) → `set NAME VALUE`
It stops on end of input, SIGTERM or SIGINT, printing `stopped`.
"""

import argparse
import asyncio
import signal
import struct
import sys
import threading

from pymodbus.datastore import ModbusDeviceContext, ModbusServerContext, ModbusSparseDataBlock
from pymodbus.server import ModbusTcpServer

# name: (function code of the table as pymodbus's context names it, address, initial value)
INPUT, HOLDING = 4, 3
FLOATS = {
    "voltage": (INPUT, 0x0000, 230.5),
    "current": (INPUT, 0x0006, 4.25),
    "active_power": (INPUT, 0x000C, 960.0),
    "power_factor": (INPUT, 0x001E, 0.98),
    "frequency": (INPUT, 0x0046, 50.0),
    "import_active_energy": (INPUT, 0x0048, 1234.5),
    "export_active_energy": (INPUT, 0x004A, 0.0),
    "total_active_energy": (INPUT, 0x0156, 1234.5),
    "parity_stop": (HOLDING, 0x0012, 0.0),  # none-1
    "meter_id": (HOLDING, 0x0014, 1.0),
    "baud_rate": (HOLDING, 0x001C, 2.0),  # 9600
}
SERIAL = (HOLDING, 0xFC00, 20240042)


def f32_words(value):
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def build_context(unit):
    # ModbusDeviceContext adds 1 to every address before it reaches the block; the blocks are
    # keyed by PDU address + 1 accordingly.
    inputs = {a + 1: 0 for a in range(0x0000, 0x0158)}
    holding = {a + 1: 0 for a in range(0x0000, 0x001E)}
    for table, address, value in FLOATS.values():
        block = inputs if table == INPUT else holding
        for i, word in enumerate(f32_words(value)):
            block[address + 1 + i] = word
    _, address, serial = SERIAL
    holding[address + 1] = serial >> 16
    holding[address + 2] = serial & 0xFFFF
    device = ModbusDeviceContext(
        ir=ModbusSparseDataBlock(inputs, mutable=False),
        hr=ModbusSparseDataBlock(holding, mutable=False),
        di=ModbusSparseDataBlock({}, mutable=False),
        co=ModbusSparseDataBlock({}, mutable=False),
    )
    return device, ModbusServerContext(devices={unit: device}, single=False)


def command(device, line):
    words = line.split()
    if len(words) == 3 and words[0] == "set" and words[1] in FLOATS:
        table, address, _ = FLOATS[words[1]]
        value = float(words[2])
        device.setValues(table, address, f32_words(value))
        return f"set {words[1]} {value}"
    return f"error: cannot do {line.strip()!r} (try `set voltage 229.9`)"


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--unit", type=int, default=1)
    args = parser.parse_args()

    device, context = build_context(args.unit)
    server = ModbusTcpServer(context, address=(args.host, args.port))
    await server.serve_forever(background=True)
    host, port = server.transport.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # Standard input is read on a daemon thread, which never holds up the exit.
    def read_commands():
        try:
            for line in sys.stdin:
                if line.strip():
                    loop.call_soon_threadsafe(
                        lambda line=line: print(command(device, line), flush=True))
            loop.call_soon_threadsafe(stop.set)
        except RuntimeError:  # the loop closed first: stopped by a signal
            pass

    threading.Thread(target=read_commands, daemon=True).start()
    await stop.wait()
    await server.shutdown()
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
