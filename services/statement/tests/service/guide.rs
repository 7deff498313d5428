//! `docs/new-service.md` against the tree: every file it names exists, its listener-only table
//! has at most six files, and every command it shows names a package, test target and example
//! that exist, with a filter that selects at least one scenario of this suite.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use test_support::scenario;
use test_support::{Scenario, Target};

pub const SCENARIOS: &[Scenario] = &[scenario!(
    the_guide_names_files_and_commands_that_exist,
    only = one_target
)];

/// The page is the same on every target: read it once.
fn one_target(target: &Target) -> bool {
    target.is("broker", "sqlite")
}

/// The most files a listener-only service may take, as the guide promises.
const LISTENER_ONLY_FILES: usize = 6;

/// The line above the guide's table of listener-only files.
const TABLE_MARKER: &str = "<!-- listener-only files";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn the_guide_names_files_and_commands_that_exist(_: Target) -> anyhow::Result<()> {
    let guide = std::fs::read_to_string(root().join("docs/new-service.md"))
        .context("reading docs/new-service.md")?;
    let (prose, commands) = split_code(&guide);
    let mut named = 0;
    for span in code_spans(&prose) {
        if let Some(path) = repository_path(span) {
            ensure!(
                root().join(path).exists(),
                "docs/new-service.md names {path}, which does not exist"
            );
            named += 1;
        }
    }
    ensure!(
        named >= 10,
        "only {named} paths found: is the page still parsed right?"
    );
    listener_only_table(&guide)?;
    ensure!(!commands.is_empty(), "the page shows no commands");
    for command in &commands {
        check_command(command).with_context(|| format!("the command `{command}`"))?;
    }
    Ok(())
}

/// The prose without fenced blocks, and the commands of its `sh` blocks (comments removed).
fn split_code(page: &str) -> (String, Vec<String>) {
    let (mut prose, mut commands) = (String::new(), Vec::new());
    let mut fence: Option<String> = None;
    for line in page.lines() {
        match (&fence, line.trim_start().strip_prefix("```")) {
            (None, Some(language)) => fence = Some(language.trim().to_owned()),
            (Some(_), Some(_)) => fence = None,
            (Some(language), None) if language == "sh" => {
                let command = line.split(" #").next().unwrap_or_default().trim();
                if !command.is_empty() {
                    commands.push(command.to_owned());
                }
            }
            (Some(_), None) => {}
            (None, None) => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    (prose, commands)
}

/// The text between pairs of backticks.
fn code_spans(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// `span` when it is a path in the repository: a file name with an extension or a path with a
/// slash, without placeholders (`<name>`), routes (`/api/…`) or code.
fn repository_path(span: &str) -> Option<&str> {
    let odd = |c: char| c.is_whitespace() || "<>{}*=:\"'(),$…".contains(c);
    let file = [".rs", ".toml", ".sql", ".json", ".md"]
        .iter()
        .any(|ext| span.ends_with(ext));
    let plausible = !span.is_empty() && !span.starts_with('/') && !span.contains(odd);
    (plausible && (file || span.contains('/'))).then_some(span)
}

/// The listener-only table: at most [`LISTENER_ONLY_FILES`] rows, each a step with a file.
fn listener_only_table(page: &str) -> anyhow::Result<()> {
    let Some(at) = page.find(TABLE_MARKER) else {
        bail!("the listener-only table's marker {TABLE_MARKER:?} is gone");
    };
    let rows: Vec<&str> = page[at..]
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .filter(|line| {
            line.trim_start_matches("| ")
                .starts_with(|c: char| c.is_ascii_digit())
        })
        .collect();
    ensure!(
        (1..=LISTENER_ONLY_FILES).contains(&rows.len()),
        "the listener-only table has {} rows; the guide promises at most {LISTENER_ONLY_FILES}",
        rows.len()
    );
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        ensure!(cells.len() >= 5, "a row without its four cells: {row}");
        ensure!(
            code_spans(cells[2]).count() == 1,
            "a step names one file: {row}"
        );
    }
    Ok(())
}

/// A `cargo` command: its package, test target, example and filter exist.
fn check_command(command: &str) -> anyhow::Result<()> {
    let words: Vec<&str> = command
        .split_whitespace()
        .skip_while(|word| word.contains('='))
        .collect();
    ensure!(words.first() == Some(&"cargo"), "not a cargo command");
    let after = |flag: &str| {
        let at = words.iter().position(|word| *word == flag)?;
        words.get(at + 1).copied()
    };
    let package = after("-p").context("no -p <package>")?;
    let dir = package_dir(package)?;
    if let Some(test) = after("--test") {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))?;
        let declared = manifest.contains(&format!("name = \"{test}\""));
        ensure!(
            declared || dir.join(format!("tests/{test}.rs")).exists(),
            "{package} has no test target {test}"
        );
    }
    if let Some(example) = after("--example") {
        let found = dir.join(format!("examples/{example}/main.rs")).exists()
            || dir.join(format!("examples/{example}.rs")).exists();
        ensure!(found, "{package} has no example {example}");
    }
    if let Some(filter) = after("--") {
        ensure!(
            package == "statement",
            "a filter for another package's tests"
        );
        let trials = trial_names();
        ensure!(
            trials.iter().any(|trial| trial.contains(filter)),
            "the filter {filter} selects no scenario"
        );
    }
    Ok(())
}

/// The directory of the workspace member named `package`.
fn package_dir(package: &str) -> anyhow::Result<PathBuf> {
    let workspace = std::fs::read_to_string(root().join("Cargo.toml"))?;
    let members = workspace
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .context("the workspace lists no members")?;
    for member in members.split(',').map(|m| m.trim().trim_matches('"')) {
        let manifest = root().join(member).join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if text.contains(&format!("name = \"{package}\"")) && text.contains("[package]") {
            return Ok(root().join(member));
        }
    }
    bail!("no workspace member is package {package}")
}

/// Every trial name this suite can have: `<broker>/<database>::<scenario>`.
fn trial_names() -> Vec<String> {
    let mut names = Vec::new();
    for scenario in crate::all_scenarios() {
        for broker in ["broker", "nats-server"] {
            for database in ["sqlite", "postgres"] {
                names.push(format!("{broker}/{database}::{}", scenario.name));
            }
        }
    }
    names
}
