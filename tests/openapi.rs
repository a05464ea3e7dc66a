//! `openapi.json` and the router agree: the same paths and methods, the same authentication,
//! every other method refused with 405; each documented request example gets a documented
//! status; and real answers (a backfill, its checkpoint, the summary, readiness) carry what the
//! response schemas require, with enum values the schemas list.

mod common;

use ghstats::serve::{Auth, OPENAPI};
use github_sim::{OrgSpec, SimOptions, Simulator};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const TOKEN: &str = "openapi-test-token";

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            let target = &spec["components"]["schemas"][name];
            assert!(!target.is_null(), "dangling $ref {r}");
            resolve(spec, target)
        }
        None => schema,
    }
}

/// Checks `value` against the parts of `schema` that say what must be there: required
/// properties, enums, constants, item and property schemas.
fn conforms(spec: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(spec, schema);
    if let Some(all) = schema.get("allOf").and_then(|a| a.as_array()) {
        for s in all {
            conforms(spec, s, value, at);
        }
    }
    if let Some(forms) = schema.get("oneOf").and_then(|o| o.as_array()) {
        let fits = forms
            .iter()
            .filter(|form| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    conforms(spec, form, value, at)
                }))
                .is_ok()
            })
            .count();
        assert!(fits >= 1, "{at}: {value} fits none of {forms:?}");
    }
    if let Some(options) = schema.get("enum").and_then(|e| e.as_array()) {
        assert!(
            options.contains(value),
            "{at}: {value} is not one of {options:?}"
        );
    }
    if let Some(c) = schema.get("const") {
        assert_eq!(value, c, "{at}");
    }
    if let Some(required) = schema.get("required").and_then(|r| r.as_array()) {
        for k in required {
            let k = k.as_str().unwrap();
            assert!(
                value.get(k).is_some(),
                "{at}: missing required {k:?} in {value}"
            );
        }
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(|p| p.as_object()),
        value.as_object(),
    ) {
        for (k, s) in props {
            if let Some(v) = obj.get(k) {
                conforms(spec, s, v, &format!("{at}.{k}"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            conforms(spec, items, v, &format!("{at}[{i}]"));
        }
    }
}

fn documented(spec: &Value) -> BTreeSet<(String, String, bool)> {
    let global = !spec["security"].as_array().unwrap().is_empty();
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let auth = match op.get("security") {
                Some(s) => !s.as_array().unwrap().is_empty(),
                None => global,
            };
            out.insert((path.clone(), method.to_ascii_uppercase(), auth));
        }
    }
    out
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "20261121T120000Z-1a2b3c")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_and_the_openapi_description_agree() {
    let spec: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));

    // The same routes, with the same authentication.
    let routes: BTreeSet<(String, String, bool)> = ghstats::serve::routes()
        .into_iter()
        .map(|(p, m, a)| (p.to_string(), m.to_string(), a))
        .collect();
    let described = documented(&spec);
    assert_eq!(
        routes,
        described,
        "routes in the router but not described: {:?}; described but not routed: {:?}",
        routes.difference(&described).collect::<Vec<_>>(),
        described.difference(&routes).collect::<Vec<_>>()
    );

    let sim = Simulator::start(&OrgSpec::new("acme", 2, 20, 61), SimOptions::default(), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gharchive = sim.gharchive_url();
    let cli = common::service::cli(
        dir.path(),
        Some(&sim.url()),
        &["--gharchive-url", &gharchive],
        &["init"],
    );
    let svc = common::service::serve(
        cli.config,
        Auth::Token(ghstats::config::Secret::new(TOKEN)),
        dir,
    )
    .await;
    let url = svc.url.clone();
    let http = reqwest::Client::new();
    let send = |method: &str, path: &str, body: Option<&Value>, token: bool| {
        let mut r = http.request(method.parse().unwrap(), format!("{url}{path}"));
        if token {
            r = r.bearer_auth(TOKEN);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let paths: BTreeSet<&String> = described.iter().map(|(p, _, _)| p).collect();
    for path in paths {
        let item = &spec["paths"][path.as_str()];
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let op = &item[method.to_ascii_lowercase()];
            let (status, body) = send(method, &concrete(path), None, true).await;
            if op.is_null() {
                assert_eq!(status, 405, "{method} {path} is not described: {body}");
                continue;
            }
            let auth = described.contains(&(path.clone(), method.into(), true));
            let (anon, _) = send(method, &concrete(path), None, false).await;
            if auth {
                assert_eq!(anon, 401, "{method} {path} needs a token");
                assert!(
                    op["responses"].get("401").is_some(),
                    "{method} {path} documents 401"
                );
            } else {
                assert_ne!(anon, 401, "{method} {path} needs no token");
            }
            // The documented example gets a documented answer.
            let example = &op["requestBody"]["content"]["application/json"]["example"];
            let (status, body) = if example.is_null() {
                (status, body)
            } else {
                send(method, &concrete(path), Some(example), true).await
            };
            let response = &op["responses"][status.to_string()];
            assert!(
                !response.is_null(),
                "{method} {path} answered {status}, which is not documented: {body}"
            );
            if let Some(schema) = response["content"]["application/json"].get("schema") {
                conforms(&spec, schema, &body, &format!("{method} {path} {status}"));
            }
        }
    }

    // Real answers conform to their schemas.
    let schema = |path: &str, method: &str, status: &str| {
        spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
            .clone()
    };
    let (status, run) = send("POST", "/backfill", Some(&json!({"days": 400})), true).await;
    assert_eq!(status, 200, "{run}");
    conforms(&spec, &schema("/backfill", "post", "200"), &run, "backfill");
    assert_eq!(run["status"], "completed");
    assert!(run["load"].is_object(), "the run was loaded: {run}");
    let id = run["collection_id"].as_str().unwrap();
    // The 200 is one of two forms: the compact progress, or with full=true the checkpoint.
    let component = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let forms: Vec<Value> = schema("/collections/{id}", "get", "200")["oneOf"]
        .as_array()
        .expect("GET /collections/{id} 200 is oneOf")
        .clone();
    assert_eq!(
        forms,
        [component("CollectionProgress"), component("Checkpoint")]
    );
    let (status, progress) = send("GET", &format!("/collections/{id}"), None, true).await;
    assert_eq!(status, 200);
    conforms(&spec, &forms[0], &progress, "progress");
    assert_eq!(progress["status"], "completed");
    assert_eq!(progress["loaded"], true);
    let (status, cp) = send("GET", &format!("/collections/{id}?full=true"), None, true).await;
    assert_eq!(status, 200);
    conforms(&spec, &forms[1], &cp, "checkpoint");
    assert!(cp["chunks"].is_array(), "{cp}");

    // Asynchronous: 202 with the documented body and headers.
    let accepted = http
        .post(format!("{url}/collect"))
        .bearer_auth(TOKEN)
        .header("prefer", "respond-async")
        .json(&json!({"hours": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 202);
    let documented = &spec["paths"]["/collect"]["post"]["responses"]["202"];
    for h in ["location", "preference-applied"] {
        assert!(accepted.headers().get(h).is_some(), "the 202 lacks {h}");
        assert!(
            documented["headers"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.eq_ignore_ascii_case(h)),
            "the 202 does not document {h}"
        );
    }
    let body: Value = accepted.json().await.unwrap();
    conforms(&spec, &schema("/collect", "post", "202"), &body, "accepted");
    let async_id = body["collection_id"].as_str().unwrap().to_string();
    let mut finished = false;
    for _ in 0..600 {
        let (_, p) = send("GET", &format!("/collections/{async_id}"), None, true).await;
        conforms(&spec, &forms[0], &p, "progress of a background run");
        if p["status"] != "running" {
            assert_eq!(p["status"], "completed", "{p}");
            finished = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(finished, "the background run never finished");
    let (status, summary) = send("GET", "/summary", None, true).await;
    assert_eq!(status, 200);
    conforms(
        &spec,
        &schema("/summary", "get", "200"),
        &summary,
        "summary",
    );
    assert!(summary["warehouse"]["pull_requests"].as_u64().unwrap() > 0);
    let (status, ready) = send("GET", "/readyz", None, false).await;
    assert_eq!(status, 200);
    conforms(&spec, &schema("/readyz", "get", "200"), &ready, "readyz");
    let (status, served) = send("GET", "/openapi.json", None, true).await;
    assert_eq!(status, 200);
    assert_eq!(served, spec, "the served description is the shipped one");
    // GH Archive: the documented example's hours, already ingested by the loop above, are
    // skipped the second time.
    let example = &spec["paths"]["/gharchive"]["post"]["requestBody"]["content"]
        ["application/json"]["example"];
    let (status, hours) = send("POST", "/gharchive", Some(example), true).await;
    assert_eq!(status, 200, "{hours}");
    conforms(
        &spec,
        &schema("/gharchive", "post", "200"),
        &hours,
        "gharchive",
    );
    assert_eq!(
        (&hours["status"], &hours["hours_skipped"]),
        (&json!("completed"), &json!(3)),
        "{hours}"
    );
    // Stars: the documented example crawls the simulator's population; a second call finds
    // the same repositories as a new crawl.
    let example =
        &spec["paths"]["/stars"]["post"]["requestBody"]["content"]["application/json"]["example"];
    let (status, crawl) = send("POST", "/stars", Some(example), true).await;
    assert_eq!(status, 200, "{crawl}");
    conforms(&spec, &schema("/stars", "post", "200"), &crawl, "stars");
    assert_eq!(
        (&crawl["status"], &crawl["repos"]),
        (&json!("completed"), &example["target"]),
        "{crawl}"
    );
    // `/resume` with the crawl's id answers the crawl's result.
    let (status, again) = send(
        "POST",
        "/resume",
        Some(&json!({"collection_id": crawl["crawl_id"]})),
        true,
    )
    .await;
    assert_eq!(status, 200, "{again}");
    conforms(
        &spec,
        &schema("/resume", "post", "200"),
        &again,
        "resume stars",
    );
    assert_eq!(
        (&again["crawl_id"], &again["status"], &again["resumed"]),
        (&crawl["crawl_id"], &json!("completed"), &json!(true)),
        "{again}"
    );
    let (status, resumed) =
        send("POST", "/resume", Some(&json!({"collection_id": id})), true).await;
    assert_eq!(status, 200);
    conforms(&spec, &schema("/resume", "post", "200"), &resumed, "resume");
    let (status, wiped) = send("POST", "/wipe", Some(&json!({"repo": "repo-000"})), true).await;
    assert_eq!(status, 200);
    conforms(&spec, &schema("/wipe", "post", "200"), &wiped, "wipe");
    assert_eq!(wiped["confirmed"], false);
}
