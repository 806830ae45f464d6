//! A simulated tasmota device. (Filled in by the tasmota dialect.)
