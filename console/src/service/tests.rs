//! Service-layer tests (filled in below).
