//! Vigil edge gateway.
