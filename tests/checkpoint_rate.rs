//! GCS takes about one write per second to one object name: a collection of many pages with
//! several workers writes its checkpoint at most about once a second, plus the final write,
//! and the final checkpoint names every chunk, each written before it.

mod common;

use async_trait::async_trait;
use common::*;
use futures::stream::BoxStream;
use ghstats::lake::checkpoint::Status;
use ghstats::lake::Lake;
use github_sim::{FaultPlan, OrgSpec, SimOptions, Simulator};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An in-memory store that records when each object was written.
#[derive(Debug, Default)]
struct Recording {
    inner: object_store::memory::InMemory,
    puts: Mutex<Vec<(Instant, String)>>,
}

impl std::fmt::Display for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recording({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Recording {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let r = self.inner.put_opts(location, payload, opts).await?;
        // Recorded once written: a write is visible from here on.
        self.puts
            .lock()
            .unwrap()
            .push((Instant::now(), location.to_string()));
        Ok(r)
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checkpoint_is_written_at_most_about_once_a_second() {
    let sim = Simulator::start(&OrgSpec::new(ORG, 4, 1000, 91), SimOptions::default(), 0)
        .await
        .unwrap();
    // Slow answers and small pages: a run of a few seconds with many pages per second.
    sim.set_faults(FaultPlan::slow(50));
    let store = Arc::new(Recording::default());
    let lake = Lake::new(store.clone(), None);
    let client = fast_client(&sim.url(), &["t"]);
    let mut opts = options(everything(), &[]);
    opts.max_workers = 4;
    opts.page_size = 5;
    opts.page_size_max = 5;
    let started = Instant::now();
    let result = collect(&client, &lake, &opts).await;
    let took = started.elapsed();
    assert_eq!(result.status, Status::Completed);

    let puts = store.puts.lock().unwrap().clone();
    let checkpoint = format!("{ORG}/_checkpoints/{}.json", result.collection_id);
    let writes: Vec<Instant> = puts
        .iter()
        .filter(|(_, p)| *p == checkpoint)
        .map(|(t, _)| *t)
        .collect();
    let pages = sim.ledger().graphql_queries;
    assert!(
        took > Duration::from_secs(2) && pages as f64 > 10.0 * took.as_secs_f64(),
        "the run is long enough and has many pages a second: {pages} queries in {took:?}"
    );
    // The first write (the plan), one a second at most, and the final one.
    let allowed = took.as_secs_f64().ceil() as usize + 2;
    assert!(
        writes.len() <= allowed,
        "{} checkpoint writes in {took:?} ({pages} queries): at most {allowed}",
        writes.len()
    );
    assert!(writes.len() >= 3, "written while running too: {writes:?}");
    // Between the first and the final write, writes are a second apart.
    for pair in writes[..writes.len() - 1].windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(990),
            "two writes {gap:?} apart"
        );
    }
    // The final checkpoint names every chunk, each written before the checkpoint's last write,
    // and the chunks hold the ground truth.
    let last = *writes.last().unwrap();
    let chunk_writes: Vec<&(Instant, String)> = puts
        .iter()
        .filter(|(_, p)| p.ends_with(".ndjson.gz"))
        .collect();
    assert!(chunk_writes.iter().all(|(t, _)| *t <= last));
    assert_tables_eq(
        &read_collection(&lake, &result.collection_id).await,
        &expected(&sim.world(), &everything(), &[]),
    );
    assert_eq!(
        result.chunks,
        chunk_writes
            .iter()
            .map(|(_, p)| p)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
}
