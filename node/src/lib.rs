//! A Clearway lane node.
//!
//! * [`face`]: the face pipeline — YuNet detection, quality gate, alignment, SFace embeddings —
//!   with pure decoding/geometry and ONNX Runtime at the edge.
//! * [`store`]: the node's local gallery store (sled, encrypted at rest, per-person keys).
//! * [`cli`]: the `clearway-node` command line.
//!
//! Architecture invariants: only `face::onnx` touches ONNX Runtime; only `store` touches sled;
//! no biometric data (embeddings, templates, photos) is ever logged.

#![warn(missing_docs)]

pub mod cli;
pub mod error;
pub mod cluster;
pub mod face;
pub mod net;
pub mod store;

pub use error::{Error, Result};
