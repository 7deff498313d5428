//! Tests of the raw client, some against a scripted fake server on a loopback port.

use super::*;

#[test]
fn urls_become_socket_addresses() {
    assert_eq!(socket_addr("nats://127.0.0.1:4333"), "127.0.0.1:4333");
    assert_eq!(socket_addr("nats://u:p@localhost"), "localhost:4222");
    assert_eq!(socket_addr("example:5"), "example:5");
}

#[test]
fn a_batch_is_frames_of_equal_length() {
    let p = Publisher::new("a.b", 3);
    assert_eq!(p.frame_len, 16);
    assert_eq!(p.batch.len() as u64, 16 * p.per_batch);
    assert!(p
        .batch
        .starts_with(b"PUB a.b 3\r\nxxx\r\nPUB a.b 3\r\nxxx\r\n"));
}

#[test]
fn a_delivery_frame_knows_its_length() {
    let f = DeliveryFrame::new("a.b", 1, 16);
    assert_eq!(f.header, b"MSG a.b 1 16\r\n");
    assert_eq!(f.len, 14 + 16 + 2);
}

/// A fake server on a loopback port: sends INFO, answers the handshake PING, then writes each
/// of `script`'s chunks separately (so frames arrive split) and keeps the socket open a while.
fn fake_server(script: Vec<Vec<u8>>) -> String {
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("nats://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_nodelay(true).unwrap();
        sock.write_all(b"INFO {\"version\":\"fake\"}\r\n").unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.ends_with(b"PING\r\n") {
            let n = sock.read(&mut buf).unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
        sock.write_all(b"PONG\r\n").unwrap();
        for chunk in script {
            sock.write_all(&chunk).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_secs(1));
    });
    url
}

fn frames(n: usize) -> Vec<u8> {
    b"MSG s 1 3\r\nabc\r\n".repeat(n)
}

#[test]
fn deliveries_split_across_reads_are_all_counted() {
    let all = frames(5);
    let script = vec![all[..7].to_vec(), all[7..20].to_vec(), all[20..].to_vec()];
    let mut conn = RawConn::connect(&fake_server(script)).unwrap();
    assert!(conn.info().contains("fake"));
    let (count, _) = conn
        .count_deliveries(&DeliveryFrame::new("s", 1, 3), |n| n >= 5)
        .unwrap();
    assert_eq!(count, 5);
}

#[test]
fn a_ping_between_deliveries_is_answered_and_skipped() {
    let script = vec![frames(2), b"PING\r\n".to_vec(), frames(1)];
    let mut conn = RawConn::connect(&fake_server(script)).unwrap();
    let (count, _) = conn
        .count_deliveries(&DeliveryFrame::new("s", 1, 3), |n| n >= 3)
        .unwrap();
    assert_eq!(count, 3);
}

#[test]
fn an_err_from_the_server_fails_the_count() {
    let script = vec![frames(2), b"-ERR 'Slow Consumer Detected'\r\n".to_vec()];
    let mut conn = RawConn::connect(&fake_server(script)).unwrap();
    let err = conn
        .count_deliveries(&DeliveryFrame::new("s", 1, 3), |n| n >= 10)
        .unwrap_err();
    assert!(err.to_string().contains("Slow Consumer"), "{err}");
}

#[test]
fn missing_deliveries_fail_after_the_stall_timeout() {
    let mut conn = RawConn::connect(&fake_server(vec![frames(3)])).unwrap();
    conn.set_stall_timeout(Duration::from_millis(300));
    let err = conn
        .count_deliveries(&DeliveryFrame::new("s", 1, 3), |n| n >= 4)
        .unwrap_err();
    assert!(err.to_string().contains("received 3 messages"), "{err}");
}
