//! Vigil server.
