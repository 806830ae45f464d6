//! homie payloads. (Filled in by the homie dialect.)
