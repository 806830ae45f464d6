//! tasmota payloads. (Filled in by the tasmota dialect.)
