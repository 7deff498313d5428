//! `bank`: the whole stack, or one component of it (see the crate documentation).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args();
    let program = args.next().unwrap_or_else(|| "bank".to_owned());
    let rest: Vec<String> = args.collect();
    if let Some(component) = rest
        .first()
        .and_then(|a| bank::components::Component::named(a))
    {
        return component.run(rest[1..].to_vec());
    }
    bank::supervisor::main(std::iter::once(program).chain(rest))
}
