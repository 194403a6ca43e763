//! The lane runtime: one joint inspection channel (DOMAIN.md, "The channel procedure").
//!
//! * [`procedure`]: the gate procedure of seed 000 as a sans-IO state machine — inputs stamped with
//!   `now`, outputs as commands — and the vocabulary every other lane module speaks.
//! * [`camera`]: GStreamer capture (RTSP, V4L2, files, test pattern) with reconnect and backoff, and
//!   the RTSP camera simulator.
//! * [`gate`]: the gates over Modbus TCP, with fencing tokens, and a Modbus TCP gate simulator.
//! * [`document`]: the document reader: ICAO 9303 MRZ checks and the permit types of DOMAIN.md.
//! * [`fingerprint`]: the fingerprint reader (capture and quality; matching is the authorities' job).
//! * [`authority`]: the two authorities' HTTPS APIs, the durable outbox, and a reference service.
//! * [`kiosk`]: the gate screens travellers read (`/kiosk`), in four languages (Fluent).
//! * [`vision`]: camera frames to faces, 1:N on the local replica, 1:1 at gate 2.
//! * [`notices`]: cancellations delivered to the port's authorities from the replicated notices.
//! * [`refresh`]: registered travellers' records kept true (card reads, face passages).
//! * [`stills`]: camera stills for a supervisor watching from the console (memory only).
//! * [`runtime`]: the event loop around the procedure and the tasks that do its IO.
//! * [`metrics`]: the lane's metrics on the node's registry.

pub mod authority;
pub mod camera;
pub mod device_tls;
pub mod document;
pub mod fingerprint;
pub mod gate;
pub mod kiosk;
pub mod metrics;
pub mod notices;
pub mod procedure;
pub mod refresh;
pub mod runtime;
pub mod stills;
pub mod vision;

pub use runtime::{Lane, LaneConfig, LaneParts, LaneStatus};
