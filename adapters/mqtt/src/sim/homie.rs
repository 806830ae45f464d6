//! A simulated homie device. (Filled in by the homie dialect.)
