//! The `broker` binary: parses the command line and runs the server until SIGINT or SIGTERM
//! (see `broker::entry`).

use std::process::ExitCode;

fn main() -> ExitCode {
    broker::entry::main(std::env::args().skip(1))
}
