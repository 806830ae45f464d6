//! GENA eventing (UDA 2.0 §4): subscriptions, SEQ, moderation and NOTIFY delivery.
