//! SSDP discovery (UDA 2.0 §1): advertisements, M-SEARCH answers and the multicast sockets.
