//! The `censorwatch` command's workings, kept in a library so that tests and benchmarks reach
//! them without starting a process: [`analyze`] (the streaming verdict loop), [`ingest`] (the same
//! loop into a store), [`db`] (`--db` URLs) and [`input`] (opening and decompressing inputs). The binary (`main.rs`) only parses arguments and
//! dispatches here; it holds no logic a test cannot reach.

pub mod analyze;
pub mod bgp;
pub mod control;
pub mod db;
pub mod events;
pub mod evidence;
pub mod ingest;
pub mod input;
pub mod lab;
pub mod probe;
pub mod serve;
pub mod simulate;
