//! A tiny HTTP/1.1 GET for the monitoring port: enough for JSON endpoints, nothing more.

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::raw::WAIT;
use crate::within;

/// A response: status code and body.
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `GET <path>` on 127.0.0.1:`port`, with `Connection: close`.
pub async fn get(port: u16, path: &str) -> anyhow::Result<Response> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("connecting to the monitoring port {port}"))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .context("sending the request")?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .context("reading the response")?;
        anyhow::Ok(raw)
    };
    let raw = within(WAIT, &format!("GET {path}"), exchange).await??;
    parse(&raw).with_context(|| format!("GET {path}"))
}

/// `GET <path>`, expecting 200 and a JSON body.
pub async fn get_json(port: u16, path: &str) -> anyhow::Result<serde_json::Value> {
    let response = get(port, path).await?;
    if response.status != 200 {
        bail!("GET {path}: status {} ({})", response.status, response.body);
    }
    serde_json::from_str(&response.body).with_context(|| format!("GET {path}: body is not JSON"))
}

fn parse(raw: &[u8]) -> anyhow::Result<Response> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let status_line = head.lines().next().context("empty response")?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok(Response { status, body })
}

// chunk = <hex size>\r\n <data>\r\n, ended by a zero-size chunk
fn dechunk(mut rest: &str) -> anyhow::Result<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").context("truncated chunk size")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size:?}"))?;
        if size == 0 {
            return Ok(body);
        }
        body.push_str(after.get(..size).context("truncated chunk")?);
        rest = after.get(size + 2..).context("truncated chunk end")?;
    }
}
