//! A Clearway lane node.
//!
//! * [`face`]: the face pipeline — YuNet detection, quality gate, alignment, SFace embeddings —
//!   with pure decoding/geometry and ONNX Runtime at the edge.
//! * [`store`]: the stand-alone local gallery store (sled, encrypted at rest, per-person keys) and
//!   the node [`keyring`](store::keyring) whose rotation shreds cancelled data.
//! * [`net`]: QUIC with mutual TLS against the port CA (quinn, rustls, rcgen) — the `clearway-wire`
//!   crate's, re-exported, as are the cluster's protocol, client and Raft types.
//! * [`cluster`]: the port cluster — the gallery replicated by openraft over `net`.
//! * [`lane`]: one channel — the seed-000 gate procedure (sans-IO) and its devices and partners:
//!   cameras (GStreamer), gates (Modbus TCP), readers, the authorities and their outbox.
//! * [`provision`]: a port from its definition — each appliance's files, Prometheus' targets.
//! * [`cli`]: the `clearway-node` command line.
//! * [`fuzzing`]: one harness per parser of untrusted bytes, for the cargo-fuzz targets in
//!   `fuzz/` and the corpus regression test.
//!
//! Architecture invariants: only `face::onnx` touches ONNX Runtime; only `store`, the cluster's
//! `log_store`/`state_machine` and the lane's authority outbox touch sled; only `net` (in `clearway-wire`) touches
//! quinn (and rustls, apart from the authorities' HTTPS in `lane::authority`); only
//! `lane::camera` touches GStreamer; no biometric data (embeddings, templates, fingerprints,
//! photos) is ever logged.

#![warn(missing_docs)]

pub mod cli;
pub mod cluster;
pub mod error;
pub mod face;
pub mod fuzzing;
pub mod lane;
pub mod provision;
pub mod store;

pub use clearway_wire::net;
pub use error::{Error, Result};
