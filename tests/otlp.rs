//! OpenTelemetry traces over OTLP/HTTP (protobuf) to a local receiver: the service binary,
//! called with a W3C `traceparent`, exports the request's span, a `job` span beneath it with the
//! run's API cost and rows, a `repository` span per repository with its rows, and a
//! `github.request` span per GitHub call with the GraphQL cost, all in the caller's trace.

mod common;

use common::ORG;
use github_sim::{OrgSpec, SimOptions, Simulator};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

async fn start_receiver(spans: Arc<Mutex<Vec<Span>>>) -> String {
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let spans = spans.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref())
                        .and_then(|v| v.value.clone());
                    assert_eq!(service, Some(Any::StringValue("ghstats".into())));
                    for ss in rs.scope_spans {
                        spans.lock().unwrap().extend(ss.spans);
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn attr(span: &Span, key: &str) -> Option<Any> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.clone())
}

fn int(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(Any::IntValue(i)) => i,
        other => panic!("{} has {key} = {other:?}", span.name),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arrive_at_a_local_otlp_receiver() {
    let sim = Simulator::start(&OrgSpec::new(ORG, 3, 30, 91), SimOptions::default(), 0)
        .await
        .unwrap();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let endpoint = start_receiver(spans.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = common::service::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ghstats"))
        .current_dir(dir.path())
        .env_clear()
        .env("GITHUB_ORG", ORG)
        .env("GITHUB_TOKEN", "ghp_otlpSECRET")
        .env("GITHUB_API_URL", sim.url())
        .env("STORAGE_URL", "file://./lake")
        .env("WAREHOUSE_URL", "sqlite://./wh.db")
        .env("PAGE_SIZE", "5")
        .env("PAGE_SIZE_MAX", "5")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("PORT", port.to_string())
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    common::service::wait_up(&http, &url).await;
    let r = http
        .post(format!("{url}/backfill"))
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(&json!({"days": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let result: serde_json::Value = r.json().await.unwrap();
    // SIGTERM: the service drains and flushes its spans before it exits.
    let pid = child.id().to_string();
    let killed =
        tokio::task::spawn_blocking(move || Command::new("kill").args(["-TERM", &pid]).status())
            .await
            .unwrap()
            .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the service exits cleanly: {status}");

    let spans = spans.lock().unwrap().clone();
    let by_name = |n: &str| spans.iter().filter(|s| s.name == n).collect::<Vec<_>>();
    let ids: HashMap<Vec<u8>, &Span> = spans.iter().map(|s| (s.span_id.clone(), s)).collect();

    let request = by_name("POST /backfill");
    assert_eq!(
        request.len(),
        1,
        "one request span: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let request = request[0];
    assert_eq!(
        hex(&request.trace_id),
        TRACE_ID,
        "the caller's trace continues"
    );
    assert_eq!(hex(&request.parent_span_id), "00f067aa0ba902b7");

    let job = by_name("job backfill");
    assert_eq!(job.len(), 1);
    let job = job[0];
    assert_eq!(job.parent_span_id, request.span_id);
    assert_eq!(
        attr(job, "collection_id"),
        Some(Any::StringValue(
            result["collection_id"].as_str().unwrap().into()
        ))
    );
    assert_eq!(
        attr(job, "status"),
        Some(Any::StringValue("completed".into()))
    );
    let ledger = sim.ledger();
    assert_eq!(int(job, "graphql_points") as u64, ledger.graphql_points);
    assert_eq!(int(job, "graphql_queries") as u64, ledger.graphql_queries);
    assert_eq!(int(job, "rest_requests") as u64, ledger.rest_requests);
    let rows: u64 = result["rows"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(int(job, "rows_written") as u64, rows);
    assert!(int(job, "rows_loaded") > 0);

    let repos: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name.starts_with("repository "))
        .collect();
    assert_eq!(repos.len(), 3, "a span per repository");
    for r in &repos {
        assert_eq!(r.parent_span_id, job.span_id);
        assert_eq!(attr(r, "state"), Some(Any::StringValue("done".into())));
    }
    assert_eq!(
        repos.iter().map(|r| int(r, "pull_requests")).sum::<i64>(),
        30
    );

    let calls: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name.starts_with("GitHub "))
        .collect();
    assert_eq!(
        calls.len() as u64,
        ledger.rest_requests + ledger.graphql_queries,
        "a span per GitHub request"
    );
    let points: i64 = calls
        .iter()
        .filter(|s| s.name == "GitHub graphql")
        .map(|s| int(s, "graphql.cost"))
        .sum();
    assert_eq!(points as u64, ledger.graphql_points);
    for c in &calls {
        assert_eq!(hex(&c.trace_id), TRACE_ID);
        assert_eq!(int(c, "http.response.status_code"), 200);
        // Every call hangs under the job, directly or through its repository.
        let parent = ids.get(&c.parent_span_id).expect("the parent span arrived");
        assert!(
            parent.span_id == job.span_id || parent.parent_span_id == job.span_id,
            "{} hangs under {}",
            c.name,
            parent.name
        );
    }
}
