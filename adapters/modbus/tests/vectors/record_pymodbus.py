#!/usr/bin/env python3
"""Record Modbus test vectors with pymodbus, an implementation independent of ours.

The bytes this prints are pasted into `adapters/modbus/src/codec/vectors.rs`, whose tests
check that our encoder produces the same bytes and our decoder reads them.

Every vector is built from pymodbus's own PDU classes (`pymodbus.pdu.*`) and framed by its
own framers (`FramerRTU`: unit, PDU, CRC low byte first; `FramerSocket`: MBAP header), then
read back by pymodbus's framer and PDU decoder to make sure pymodbus agrees with itself.

Run:
    python3 -m venv /work/venv-pymodbus
    /work/venv-pymodbus/bin/pip install 'pymodbus==3.11.*'
    /work/venv-pymodbus/bin/python adapters/modbus/tests/vectors/record_pymodbus.py

Recorded with pymodbus 3.11.4. Output: one block per vector with its PDU, RTU frame (unit
0x11) and TCP frame (transaction 0x1234, unit 0x11), as hex.
"""

from __future__ import annotations

import pymodbus
from pymodbus.framer.rtu import FramerRTU
from pymodbus.framer.socket import FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, FileRecord
from pymodbus.pdu.diag_message import (
    ReturnBusMessageCountRequest,
    ReturnBusMessageCountResponse,
    ReturnQueryDataRequest,
    ReturnQueryDataResponse,
)
from pymodbus.pdu.file_message import (
    ReadFileRecordRequest,
    ReadFileRecordResponse,
    WriteFileRecordRequest,
    WriteFileRecordResponse,
)
from pymodbus.pdu.mei_message import (
    ReadDeviceInformationRequest,
    ReadDeviceInformationResponse,
)
from pymodbus.pdu.other_message import GetCommEventLogRequest, GetCommEventLogResponse
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    WriteMultipleRegistersRequest,
    WriteMultipleRegistersResponse,
)

UNIT = 0x11
TRANSACTION = 0x1234


def vectors():
    """(name, is_request, pdu object) for every vector, built as pymodbus users build them."""
    ids = {"dev_id": UNIT, "transaction_id": TRANSACTION}
    firmware = bytes.fromhex("06af04be100d")
    return [
        ("read_holding_registers_request", True,
         ReadHoldingRegistersRequest(address=0x006B, count=3, **ids)),
        ("read_holding_registers_response", False,
         ReadHoldingRegistersResponse(registers=[0x022B, 0x0000, 0x0064], **ids)),
        ("write_multiple_registers_request", True,
         WriteMultipleRegistersRequest(address=0x0001, registers=[0x000A, 0x0102], **ids)),
        ("write_multiple_registers_response", False,
         WriteMultipleRegistersResponse(address=0x0001, count=2, **ids)),
        ("read_file_record_request", True,
         ReadFileRecordRequest(records=[
             FileRecord(file_number=4, record_number=1, record_length=4),  # bytes: 2 registers
             FileRecord(file_number=3, record_number=9, record_length=4),
         ], **ids)),
        ("read_file_record_response", False,
         ReadFileRecordResponse(records=[
             FileRecord(record_data=bytes.fromhex("0dfe0020")),
             FileRecord(record_data=bytes.fromhex("33cd0040")),
         ], **ids)),
        ("write_file_record_request", True,
         WriteFileRecordRequest(records=[
             FileRecord(file_number=4, record_number=7, record_data=firmware),
         ], **ids)),
        ("write_file_record_response", False,
         WriteFileRecordResponse(records=[
             FileRecord(file_number=4, record_number=7, record_data=firmware),
         ], **ids)),
        ("read_device_identification_request", True,
         ReadDeviceInformationRequest(read_code=1, object_id=0, **ids)),
        ("read_device_identification_response", False,
         ReadDeviceInformationResponse(read_code=1, information={
             0x00: b"Company", 0x01: b"PC", 0x02: b"V2.1",
         }, **ids)),
        ("diagnostics_return_query_data_request", True,
         ReturnQueryDataRequest(message=0xA537, **ids)),
        ("diagnostics_return_query_data_response", False,
         ReturnQueryDataResponse(message=0xA537, **ids)),
        ("diagnostics_bus_message_count_request", True,
         ReturnBusMessageCountRequest(message=0, **ids)),
        ("diagnostics_bus_message_count_response", False,
         ReturnBusMessageCountResponse(message=0x0123, **ids)),
        ("get_comm_event_log_request", True,
         GetCommEventLogRequest(**ids)),
        ("get_comm_event_log_response", False,
         GetCommEventLogResponse(status=True, event_count=0x0108, message_count=0x0121,
                                 events=[0x20, 0x00], **ids)),
        ("exception_response", False,
         ExceptionResponse(0x03, 0x02, device_id=UNIT, transaction=TRANSACTION)),
    ]


def read_back(framer_class, is_request: bool, frame: bytes, expected) -> None:
    """pymodbus reads its own frame back to the same function code (the server side decodes
    requests, the client side responses)."""
    framer = framer_class(DecodePDU(is_server=is_request))
    used, pdu = framer.handleFrame(frame, 0, 0)
    assert used == len(frame), (framer_class.__name__, frame.hex(), used)
    assert pdu is not None and pdu.function_code == expected.function_code, (frame.hex(), pdu)


def main() -> None:
    print(f"# pymodbus {pymodbus.__version__}")
    # Each encoding gets fresh PDU objects: pymodbus's ReadDeviceInformationResponse.encode()
    # is not idempotent (every call adds the objects to number_of_objects again, 3 then 6 ...).
    for (name, is_request, pdu), (_, _, for_rtu), (_, _, for_tcp) in zip(
        vectors(), vectors(), vectors()
    ):
        rtu = FramerRTU(DecodePDU(is_server=False)).buildFrame(for_rtu)
        tcp = FramerSocket(DecodePDU(is_server=False)).buildFrame(for_tcp)
        read_back(FramerRTU, is_request, rtu, pdu)
        read_back(FramerSocket, is_request, tcp, pdu)
        body = pdu.function_code.to_bytes(1, "big") + pdu.encode()
        print(name)
        print(f"  pdu {body.hex()}")
        print(f"  rtu {rtu.hex()}")
        print(f"  tcp {tcp.hex()}")


if __name__ == "__main__":
    main()
