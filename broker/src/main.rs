//! The `broker` binary: parses the command line and runs the server until a signal.

fn main() {
    println!("broker: under construction");
}
