//! The table the stack prints once every component is ready.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use crate::config::LogTarget;
use crate::plan::Plan;

/// Renders the table: one row per process (and the broker's monitoring), with its URL and
/// what it keeps on disk, relative to the current directory where that is shorter.
pub fn render(plan: &Plan, logs: LogTarget, took: Duration) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    let shown = |path: &Path| {
        path.strip_prefix(&cwd)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.display().to_string())
    };
    let mut rows = vec![("COMPONENT".to_owned(), "URL".to_owned(), "DATA".to_owned())];
    for component in &plan.components {
        let data = component.data.as_deref().map_or("-".to_owned(), shown);
        rows.push((component.name.clone(), component.url.clone(), data));
        if let Some((name, url)) = &component.extra_url {
            rows.push((name.clone(), url.clone(), "-".to_owned()));
        }
    }
    let width = |pick: fn(&(String, String, String)) -> &String| {
        rows.iter()
            .map(|r| pick(r).chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(|r| &r.0), width(|r| &r.1));
    let mut out = String::new();
    for (name, url, data) in &rows {
        let _ = writeln!(out, "  {name:<w0$}  {url:<w1$}  {data}");
    }
    let logs = match logs {
        LogTarget::Files => format!("logs in {}", shown(&plan.log_dir)),
        LogTarget::Terminal => "logs below".to_owned(),
    };
    let _ = writeln!(
        out,
        "\nthe bank is up in {:.1} s: open {} ({logs}; Ctrl-C stops everything)",
        took.as_secs_f64(),
        plan.console_url
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use crate::ports::Ports;
    use crate::StackConfig;
    use clap::Parser;

    #[test]
    fn the_table_lists_every_component_with_its_url_and_data() {
        let config = StackConfig::try_parse_from(["bank"]).unwrap();
        let ports = Ports {
            console: 8080,
            transaction: 8081,
            accounts: vec![8082, 8083],
            statement: 8084,
            broker: 4222,
            monitor: 8222,
        };
        let plan = plan(&config, &ports, Path::new("/srv/data"));
        let table = render(&plan, LogTarget::Files, Duration::from_millis(1500));
        for expected in [
            "broker          nats://127.0.0.1:4222  /srv/data/broker",
            "broker monitor  http://127.0.0.1:8222  -",
            "account-2       http://127.0.0.1:8083  /srv/data/account.db",
            "statement       http://127.0.0.1:8084  /srv/data/statement.db",
            "console         http://127.0.0.1:8080  -",
            "up in 1.5 s: open http://127.0.0.1:8080/",
        ] {
            assert!(
                table.contains(expected),
                "{expected:?} missing from\n{table}"
            );
        }
    }
}
