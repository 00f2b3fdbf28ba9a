//! The command-line subcommands: thin I/O around the library.

pub mod check;
pub mod crd;
pub mod decide;
mod error;
pub mod input;
pub mod run;
pub mod simulate;

pub use error::CliError;
