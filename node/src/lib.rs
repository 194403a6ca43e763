//! A Clearway lane node.
//!
//! * [`face`]: the face pipeline — YuNet detection, quality gate, alignment, SFace embeddings —
//!   with pure decoding/geometry and ONNX Runtime at the edge.
//! * [`store`]: the stand-alone local gallery store (sled, encrypted at rest, per-person keys) and
//!   the node [`keyring`](store::keyring) whose rotation shreds cancelled data.
//! * [`net`]: QUIC with mutual TLS against the port CA (quinn, rustls, rcgen).
//! * [`cluster`]: the port cluster — the gallery replicated by openraft over `net`.
//! * [`cli`]: the `clearway-node` command line.
//!
//! Architecture invariants: only `face::onnx` touches ONNX Runtime; only `store` and the cluster's
//! `log_store`/`state_machine` touch sled; only `net` touches quinn/rustls; no biometric data
//! (embeddings, templates, photos) is ever logged.

#![warn(missing_docs)]

pub mod cli;
pub mod cluster;
pub mod error;
pub mod face;
pub mod lane;
pub mod net;
pub mod store;

pub use error::{Error, Result};
