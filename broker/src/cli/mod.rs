//! The command line, compatible with nats-server's and NATS Streaming's flags.
//!
//! Flags follow Go's `flag` package, which clap cannot express: one dash or two (`-port`,
//! `--port`), the value as the next argument or after `=` (`-p 4222`, `-p=4222`), switches with
//! no value or `=true`/`=false` (`-D`, `-D=false`), and parsing stops at `--` or at the first
//! argument that is not a flag. As nats-server, that argument may be the word `version` or
//! `help`. Settings come from defaults, then the config file (`-c`), then the other flags,
//! whatever their order on the command line.

mod flags;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use flags::{lookup, Builder, Flag, Given};

pub use crate::config_file::{ConfigError, Location};
use crate::options::Options;

/// What the process should do.
#[derive(Debug)]
pub enum Command {
    /// Serve with these options.
    Run(Box<Options>),
    /// Check the configuration and exit without serving (`-t`, as nats-server).
    CheckConfig(Box<Options>),
    /// Print the version and exit (`-v`, `--version`, or the word `version`).
    Version,
    /// Print [`usage`] and exit (`-h`, `--help`, or the word `help`).
    Help,
    /// Send a signal to a running broker and exit: the value of `--signal`, as
    /// `<command>[=<pid or pid file>]` (see `send_signal`).
    Signal(String),
}

/// Why the command line cannot be used; each message is one line that names the flag, in the
/// words Go's `flag` package uses where it has them.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag no row of the table spells.
    #[error("flag provided but not defined: -{0}")]
    UndefinedFlag(String),
    /// A flag that takes a value came last.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// A value the flag cannot use.
    #[error("invalid value {value:?} for flag -{flag}: {reason}")]
    InvalidValue {
        /// The flag as written, without dashes.
        flag: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `-D=maybe`: a switch takes only true or false.
    #[error("invalid boolean value {value:?} for -{flag}: parse error")]
    InvalidBool {
        /// The flag as written, without dashes.
        flag: String,
        /// The value as written.
        value: String,
    },
    /// `---x` or `-=x`.
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    /// An argument after the flags other than `version` or `help`.
    #[error("unrecognized command: {0:?}")]
    UnrecognizedCommand(String),
    /// A flag of nats-server for a feature this broker does not have (TLS, clustering).
    #[error("flag -{flag}: {reason}")]
    Unsupported {
        /// The flag as written, without dashes.
        flag: String,
        /// Which feature is missing.
        reason: String,
    },
    /// Two flags that exclude each other, such as `-auth` and `-user`.
    #[error("flags -{0} and -{1} cannot be used together")]
    Conflict(&'static str, &'static str),
    /// A flag that needs another, such as `-user` without `-pass`.
    #[error("flag -{0} needs flag -{1} as well")]
    Requires(&'static str, &'static str),
    /// The `-tls*` flags do not make a usable TLS configuration.
    #[error("{0}")]
    Tls(String),
    /// The file named by `-c` cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Settings that contradict each other, in nats-server's words.
    #[error("{0}")]
    Inconsistent(String),
}

/// Parses the arguments after the program name into what to do, plus warnings about settings
/// that were accepted but ignored or will not work (for the caller to log once logging is set
/// up).
pub fn parse_args<I: IntoIterator<Item = String>>(
    args: I,
) -> Result<(Command, Vec<String>), CliError> {
    parse(args, true)
}

/// [`parse_args`] for a configuration reload: the settings are not checked against each other
/// yet, because a reload first refuses what it cannot change (as nats-server, which validates
/// after comparing); see `Options::validate`.
pub fn parse_args_for_reload<I: IntoIterator<Item = String>>(
    args: I,
) -> Result<(Command, Vec<String>), CliError> {
    parse(args, false)
}

fn parse<I: IntoIterator<Item = String>>(
    args: I,
    validate: bool,
) -> Result<(Command, Vec<String>), CliError> {
    let scan = scan(args)?;
    if scan.version {
        return Ok((Command::Version, Vec::new()));
    }
    if scan.help {
        return Ok((Command::Help, Vec::new()));
    }
    // As nats-server: the signal is sent before the config file is read, and an empty value
    // sends nothing.
    if let Some(value) = scan.signal.filter(|v| !v.is_empty()) {
        return Ok((Command::Signal(value), Vec::new()));
    }
    let mut opts = Options::default();
    let mut warnings = match &scan.config {
        Some(path) => crate::config_file::load_into(path, &mut opts)?,
        None => Vec::new(),
    };
    let mut builder = Builder::new(opts);
    for given in &scan.flags {
        builder.apply(given)?;
    }
    let (mut opts, flag_warnings) = builder.finish()?;
    opts.config_file = scan.config.clone();
    if validate {
        opts.validate().map_err(CliError::Inconsistent)?;
    }
    warnings.extend(flag_warnings);
    warnings.extend(crate::auth::malformed_hashes(&opts));
    warnings.extend(crate::auth::users_without_password(&opts));
    let opts = Box::new(opts);
    let command = if scan.check {
        Command::CheckConfig(opts)
    } else {
        Command::Run(opts)
    };
    Ok((command, warnings))
}

/// The help text, listing every flag.
pub fn usage() -> &'static str {
    include_str!("usage.txt")
}

/// The flags in command-line order, and the ones that decide what to do.
#[derive(Default)]
struct Scan {
    flags: Vec<Given>,
    config: Option<PathBuf>,
    check: bool,
    version: bool,
    help: bool,
    signal: Option<String>,
}

/// Reads every flag, checking each value in command-line order as Go does, so the first
/// mistake is the one reported.
fn scan<I: IntoIterator<Item = String>>(args: I) -> Result<Scan, CliError> {
    let mut args = args.into_iter();
    let mut scan = Scan::default();
    let mut check = Builder::new(Options::default());
    while let Some(arg) = args.next() {
        if arg == "--" {
            if let Some(word) = args.next() {
                scan.command_word(word)?;
            }
            break;
        }
        if arg.len() < 2 || !arg.starts_with('-') {
            scan.command_word(arg)?;
            break;
        }
        let given = read_flag(&arg, &mut args)?;
        check.apply(&given)?;
        match given.flag {
            Flag::Config => scan.config = Some(PathBuf::from(&given.value)),
            Flag::CheckConfig => scan.check = given.switch(),
            Flag::Version => scan.version = given.switch(),
            Flag::Help => scan.help = given.switch(),
            Flag::Signal => scan.signal = Some(given.value.clone()),
            _ => {}
        }
        scan.flags.push(given);
    }
    Ok(scan)
}

impl Scan {
    // As nats-server: the first argument after the flags may be `version` or `help`.
    fn command_word(&mut self, word: String) -> Result<(), CliError> {
        match word.to_ascii_lowercase().as_str() {
            "version" => self.version = true,
            "help" => self.help = true,
            _ => return Err(CliError::UnrecognizedCommand(word)),
        }
        Ok(())
    }
}

// -name, --name, -name=value, -name value; a switch's value only after `=`.
fn read_flag(arg: &str, rest: &mut impl Iterator<Item = String>) -> Result<Given, CliError> {
    let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
    if body.is_empty() || body.starts_with(['-', '=']) {
        return Err(CliError::BadSyntax(arg.to_string()));
    }
    let (name, inline) = match body.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (body, None),
    };
    let spec = lookup(name).ok_or_else(|| CliError::UndefinedFlag(name.to_string()))?;
    if let Flag::Refused(reason) = spec.flag {
        return Err(CliError::Unsupported {
            flag: name.to_string(),
            reason: reason.to_string(),
        });
    }
    let value = match (spec.takes_value, inline) {
        (true, Some(value)) => value.to_string(),
        (true, None) => rest
            .next()
            .ok_or_else(|| CliError::MissingValue(name.to_string()))?,
        (false, None) => "true".to_string(),
        (false, Some(value)) => go_bool(value)
            .ok_or_else(|| CliError::InvalidBool {
                flag: name.to_string(),
                value: value.to_string(),
            })?
            .to_string(),
    };
    Ok(Given {
        flag: spec.flag,
        name: name.to_string(),
        value,
    })
}

/// A boolean as Go's `strconv.ParseBool` reads it.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}
