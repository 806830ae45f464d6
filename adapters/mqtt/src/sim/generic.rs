//! A simulated generic device. (Filled in by the generic dialect.)
