//! Helpers shared by the cli's integration tests.

#![allow(dead_code)]

pub(crate) mod block;
