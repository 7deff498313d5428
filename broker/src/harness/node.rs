//! Node.js packages for the tests that drive NATS Streaming clients written for Node: installs
//! a directory's pinned packages with `npm ci` when they are missing or older than its lock
//! file.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

/// What to install when Node.js or npm is missing.
const NEEDS: &str =
    "Node.js (18 or newer) and npm must be on PATH (Debian: apt-get install nodejs npm)";

/// Runs `npm ci` in `dir` unless its `node_modules` is at least as new as its
/// `package-lock.json`.
pub fn npm_ci(dir: &Path) -> anyhow::Result<()> {
    let marker = dir.join("node_modules").join(".package-lock.json");
    let lock = dir.join("package-lock.json");
    let fresh = match (marker.metadata(), lock.metadata()) {
        (Ok(m), Ok(l)) => m.modified().ok() >= l.modified().ok(),
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run npm: {NEEDS}"))?;
    if !output.status.success() {
        bail!(
            "npm ci in {} failed ({}):\n{}{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A `node` command, or why there is none.
pub fn node() -> anyhow::Result<Command> {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run node: {NEEDS}"))?;
    let text = String::from_utf8_lossy(&version.stdout);
    let major: u32 = text
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("node --version said {text:?}"))?;
    anyhow::ensure!(major >= 18, "node {} is too old: {NEEDS}", text.trim());
    Ok(Command::new("node"))
}
