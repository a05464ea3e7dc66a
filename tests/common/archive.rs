//! GH Archive hour files served on loopback, one of them held back until the test lets it go:
//! a run can be caught in the middle of an hour without timing anything.

use std::collections::HashMap;
use std::sync::Arc;

/// The simulator's files for `hours` under `spec`, by GH Archive's file name.
pub fn hour_files(
    spec: &github_sim::GhArchiveSpec,
    hours: &[chrono::DateTime<chrono::Utc>],
) -> HashMap<String, Vec<u8>> {
    hours
        .iter()
        .map(|h| {
            (
                github_sim::gharchive::file_name(*h),
                github_sim::gharchive::gzip(spec, *h).0,
            )
        })
        .collect()
}

/// Serves `files` at `{url}/{file name}` (404 for any other); a request for `gated` first
/// says so on the returned receiver, then waits for a permit of the returned semaphore.
pub async fn gated(
    files: HashMap<String, Vec<u8>>,
    gated: String,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<()>,
    Arc<tokio::sync::Semaphore>,
) {
    use axum::extract::{Path, State};
    let (asked_tx, asked) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    type Gate = (
        Arc<HashMap<String, Vec<u8>>>,
        String,
        tokio::sync::mpsc::UnboundedSender<()>,
        Arc<tokio::sync::Semaphore>,
    );
    let state: Gate = (Arc::new(files), gated, asked_tx, release.clone());
    let app =
        axum::Router::new()
            .route(
                "/{file}",
                axum::routing::get(
                    |State((files, gated, asked, release)): State<Gate>,
                     Path(file): Path<String>| async move {
                        if file == gated {
                            let _ = asked.send(());
                            release.acquire().await.unwrap().forget();
                        }
                        files
                            .get(&file)
                            .cloned()
                            .ok_or(axum::http::StatusCode::NOT_FOUND)
                    },
                ),
            )
            .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), asked, release)
}
