//! `bank`: the whole bank on one machine with one command.
//!
//! `bank` (what `cargo run --release` runs) starts the bundled broker with JetStream, the
//! transaction service, account-service replicas (one queue group), the statement service and
//! the web console, each as a child process of its own with its own NATS connection, HTTP port
//! and database, prints one table of what runs where, restarts a component that dies, and on
//! Ctrl-C or SIGTERM stops them in order: services first (they drain), the broker last.
//!
//! The same binary runs any one component: `bank broker -js`, `bank account-service`,
//! `bank transaction-service`, `bank statement-service`, `bank console` take the component's
//! own flags. The stack starts its children that way, so one build gives every process, and
//! killing a child with `kill -9` is a real crash: its connection drops and its unacknowledged
//! messages go to the others.
//!
//! A tour: [`config`] (the stack's flags), [`ports`] (assigning and checking ports), `lock`
//! (one stack per data directory), [`plan`] (which processes, with which arguments),
//! [`supervisor`] (running, restarting and stopping them; `child` is one of them), [`table`]
//! (what is printed), [`components`] (running one component in this process).

mod child;
pub mod components;
pub mod config;
mod lock;
pub mod plan;
pub mod ports;
pub mod supervisor;
pub mod table;

pub use config::StackConfig;
