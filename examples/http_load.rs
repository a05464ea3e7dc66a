//! A bounded load generator for `ghstats serve` (loopback only), used by
//! `scripts/bench-serve.sh`: N GET requests alternating `/summary` and `/collections/{id}`
//! over C connections, then the latency percentiles and any errors.
//!
//!   http_load URL COLLECTION_ID [N=1000] [C=8]

use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: http_load URL COLLECTION_ID [N] [CONCURRENCY]");
        return std::process::ExitCode::from(2);
    }
    let base = args[1].trim_end_matches('/').to_string();
    if !base.starts_with("http://127.0.0.1:") {
        eprintln!("http_load targets loopback only (http://127.0.0.1:PORT)");
        return std::process::ExitCode::from(2);
    }
    let id = args[2].clone();
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let c: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(8).max(1);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..c {
        let (http, base, id, next) = (http.clone(), base.clone(), id.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut out: Vec<(bool, Duration, Option<String>)> = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return out;
                }
                let summary = i % 2 == 0;
                let url = if summary {
                    format!("{base}/summary")
                } else {
                    format!("{base}/collections/{id}")
                };
                let t = Instant::now();
                let result = match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.err().map(|e| e.to_string())
                    }
                    Ok(r) => Some(format!("HTTP {}", r.status())),
                    Err(e) => Some(e.to_string()),
                };
                out.push((summary, t.elapsed(), result));
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    let wall = started.elapsed();
    let errors: Vec<&String> = all.iter().filter_map(|(_, _, e)| e.as_ref()).collect();
    let pct = |mut v: Vec<Duration>, p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        v.sort();
        let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
        v[i].as_secs_f64() * 1000.0
    };
    let report = |name: &str, sel: &dyn Fn(bool) -> bool| {
        let v: Vec<Duration> = all
            .iter()
            .filter(|(s, _, _)| sel(*s))
            .map(|(_, d, _)| *d)
            .collect();
        println!(
            "{name}: {} requests, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            v.len(),
            pct(v.clone(), 50.0),
            pct(v.clone(), 90.0),
            pct(v.clone(), 99.0),
            pct(v, 100.0)
        );
    };
    report("GET /summary", &|s| s);
    report("GET /collections/{id}", &|s| !s);
    let every: Vec<Duration> = all.iter().map(|(_, d, _)| *d).collect();
    println!("requests={}", all.len());
    println!("errors={}", errors.len());
    println!("concurrency={c}");
    println!(
        "requests_per_second={:.0}",
        all.len() as f64 / wall.as_secs_f64()
    );
    println!("latency_p50_ms={:.1}", pct(every.clone(), 50.0));
    println!("latency_p90_ms={:.1}", pct(every.clone(), 90.0));
    println!("latency_p99_ms={:.1}", pct(every.clone(), 99.0));
    println!("latency_max_ms={:.1}", pct(every, 100.0));
    for e in errors.iter().take(5) {
        eprintln!("error: {e}");
    }
    if errors.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
