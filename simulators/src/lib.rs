//! Vigil simulators.
