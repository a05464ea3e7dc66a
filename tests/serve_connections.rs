//! Slow and idle clients against `ghstats serve` on loopback, over raw TCP: a header trickled
//! slower than `SERVE_HEADER_TIMEOUT` is cut off, a late body gets 408, an idle kept-alive
//! connection is closed after `SERVE_IDLE_TIMEOUT`, a run in progress outlives both, and with
//! `SERVE_MAX_CONNECTIONS` held by idle clients `/healthz` still answers (the connections idle
//! longest make room). Every wait has a generous guard so a regression fails instead of hanging.

mod common;

use common::service::start_with;
use ghstats::serve::Auth;
use github_sim::{FaultPlan, OrgSpec, SimOptions, Simulator};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far longer than any timeout a test sets: reached only when the server never acts.
const GUARD: Duration = Duration::from_secs(60);

async fn sim() -> Simulator {
    Simulator::start(&OrgSpec::new("acme", 1, 5, 91), SimOptions::default(), 0)
        .await
        .unwrap()
}

/// Reads one HTTP/1.1 response (status line, headers, `Content-Length` body) from `s`;
/// `None` when the connection closes first.
async fn read_response(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Some(text);
            }
        }
        match tokio::time::timeout(GUARD, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("no answer and no close within {GUARD:?}"),
        }
    }
}

/// Waits until the server closes `s` (end of stream or reset); panics past the guard.
async fn closed_by_server(s: &mut TcpStream) {
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(GUARD, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept the connection open past {GUARD:?}"),
        }
    }
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_trickled_slower_than_the_header_timeout_is_cut_off() {
    let sim = sim().await;
    let s = start_with(
        &sim,
        Auth::None,
        &[],
        &["--header-timeout", "1s", "--idle-timeout", "1h"],
    )
    .await;
    // A well-behaved client on another connection is answered.
    let mut quick = TcpStream::connect(s.addr).await.unwrap();
    quick.write_all(HEALTH).await.unwrap();
    let answer = read_response(&mut quick).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // One byte every 100 ms: the whole header would take about 9 s.
    let header = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(40)
    );
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut rx, mut tx) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(GUARD, rx.read_to_end(&mut got)).await;
        got
    });
    let mut sent = 0;
    for b in header.as_bytes() {
        if reader.is_finished() || tx.write_all(&[*b]).await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = reader.await.unwrap();
    assert!(
        sent < header.len(),
        "the whole header was taken, trickled over {} bytes",
        header.len()
    );
    assert!(
        !String::from_utf8_lossy(&got).contains("200 OK"),
        "the trickled request was answered: {}",
        String::from_utf8_lossy(&got)
    );
    // The server still serves.
    let mut again = TcpStream::connect(s.addr).await.unwrap();
    again.write_all(HEALTH).await.unwrap();
    assert!(read_response(&mut again)
        .await
        .expect("an answer")
        .starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_header_timeout_gets_408() {
    let sim = sim().await;
    let s = start_with(
        &sim,
        Auth::None,
        &[],
        &["--header-timeout", "1s", "--idle-timeout", "1h"],
    )
    .await;
    // A body that would be refused as not valid (400) if it all arrived.
    let body = format!("{{\"hours\": 0, \"x\": \"{}\"}}", "a".repeat(40));
    let head = format!(
        "POST /collect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut rx, mut tx) = stream.into_split();
    tx.write_all(head.as_bytes()).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(GUARD, rx.read_to_end(&mut got)).await;
        got
    });
    for b in body.as_bytes() {
        if reader.is_finished() || tx.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(tx);
    let got = String::from_utf8_lossy(&reader.await.unwrap()).to_string();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("SERVE_HEADER_TIMEOUT"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let sim = sim().await;
    let s = start_with(
        &sim,
        Auth::None,
        &[],
        &["--idle-timeout", "1s", "--header-timeout", "1h"],
    )
    .await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    // Kept alive: two requests on the one connection are answered.
    for _ in 0..2 {
        c.write_all(HEALTH).await.unwrap();
        let answer = read_response(&mut c).await.expect("an answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    // Then nothing is sent: the server closes it.
    closed_by_server(&mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_checks_answer_while_idle_connections_fill_the_cap() {
    let sim = sim().await;
    let s = start_with(
        &sim,
        Auth::None,
        &[],
        &[
            "--max-connections",
            "20",
            "--idle-timeout",
            "1h",
            "--header-timeout",
            "1h",
        ],
    )
    .await;
    // Twice the cap of connections that send nothing.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(s.addr).await.unwrap());
    }
    let r = s
        .http
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .expect("/healthz answers");
    assert_eq!(r.status().as_u16(), 200);
    // The 21 connections idle longest made room (20 idle ones beyond the cap, and the health
    // check's): the server closed them, in the order they came.
    for (i, c) in idle.iter_mut().enumerate().take(21) {
        tokio::time::timeout(GUARD, closed_by_server(c))
            .await
            .unwrap_or_else(|_| panic!("idle connection {i} is still open"));
    }
    // The newest idle connection is still held, and served when it speaks.
    let last = idle.last_mut().unwrap();
    last.write_all(HEALTH).await.unwrap();
    let answer = read_response(last).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_in_progress_outlives_the_header_and_idle_timeouts() {
    let sim = Simulator::start(&OrgSpec::new("acme", 2, 40, 92), SimOptions::default(), 0)
        .await
        .unwrap();
    // Every GitHub answer takes 150 ms: the run takes longer than either timeout.
    sim.set_faults(FaultPlan::slow(150));
    let s = start_with(
        &sim,
        Auth::None,
        &[
            "--page-size",
            "5",
            "--page-size-max",
            "5",
            "--max-workers",
            "1",
        ],
        &["--header-timeout", "1s", "--idle-timeout", "1s"],
    )
    .await;
    let started = std::time::Instant::now();
    let (code, b) = s.post("/backfill", json!({"days": 400})).await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(b["load"]["tables"]["pull_requests"]["inserted"], 40, "{b}");
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "the run was too quick to show anything: {:?}",
        started.elapsed()
    );
}
