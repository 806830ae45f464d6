//! generic payloads. (Filled in by the generic dialect.)
