//! The three spec kinds and the envelope every document shares.

pub mod dcgm;
pub mod envelope;
pub mod lifecycle;
pub mod limits;
pub mod orphan;
pub mod resolution;
