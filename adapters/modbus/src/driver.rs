//! One task per bus that owns it.
