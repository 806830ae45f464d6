//! The forms of a page of records (filled in by the rendering work; see the brief).
