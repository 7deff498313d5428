//! The NATS configuration-file syntax, for the settings the broker knows.
//!
//! Reading a file goes text → [`value::Value`] tree (`lexer.rs`, `parse.rs`) → [`Options`]
//! (`apply.rs`). The tree is generic: it holds whatever the file says, so `apply.rs` alone decides
//! which settings exist, which are ignored with a warning and which are errors.

mod accounts;
#[cfg(test)]
mod accounts_tests;
mod apply;
mod jetstream;
#[cfg(test)]
mod jetstream_tests;
mod lexer;
mod links;
#[cfg(test)]
mod links_tests;
mod operator;
mod parse;
mod permissions;
#[cfg(test)]
mod tests;
mod tls;
#[cfg(test)]
mod tls_tests;
mod users;
mod value;

use std::io;
use std::path::{Path, PathBuf};

pub(crate) use value::parse_size;
pub use value::{parse_duration, Location};

use crate::options::Options;

/// Why a configuration file could not be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, or a file it includes, could not be read.
    #[error("config file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: io::Error,
    },
    /// The text does not follow the configuration-file syntax.
    #[error("config file {at}: {message}")]
    Syntax {
        /// Where reading stopped.
        at: Location,
        /// What was expected.
        message: String,
    },
    /// A key the broker neither implements nor knows to be harmless.
    #[error("config file {at}: unknown setting '{key}': this broker does not implement it")]
    UnknownSetting {
        /// Where the key is.
        at: Location,
        /// The key as written.
        key: String,
    },
    /// A setting nats-server has that this broker refuses rather than silently ignores.
    #[error("config file {at}: setting '{key}' cannot be used: {message}")]
    Unsupported {
        /// Where the key is.
        at: Location,
        /// The key as written.
        key: String,
        /// Why, and what to do instead.
        message: String,
    },
    /// A known setting with a value the broker cannot use.
    #[error("config file {at}: invalid value for '{key}': {message}")]
    InvalidValue {
        /// Where the value is.
        at: Location,
        /// The setting.
        key: String,
        /// What was expected.
        message: String,
    },
}

/// Reads the configuration file at `path` (`$NAME` falls back to the environment) and applies
/// it onto `opts`; returns warnings about settings it ignored, for the caller to log.
pub fn load_into(path: &Path, opts: &mut Options) -> Result<Vec<String>, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    let map = parse::parse_file(path, &env)?;
    let mut warnings = Vec::new();
    apply::apply(&map, opts, &mut warnings)?;
    Ok(warnings)
}
