//! The gate procedure of seed 000 as a sans-IO state machine (being written).

mod vocab;

pub use vocab::*;
