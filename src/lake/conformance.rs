//! The storage conformance suite every backend passes (in-memory, local filesystem, S3, GCS):
//! each check takes a [`Lake`], works under a random organization so checks can share a
//! bucket, and returns an error naming what did not hold.

use super::checkpoint::{CollectionKind, Status};
use super::lock::{LeaseLock, LockError};
use super::{chunk::decode_chunk, Checkpoint, CheckpointStore, ChunkWriter, Lake};
use crate::github::pulls::Window;
use crate::github::ApiCost;
use crate::names::OrgName;
use anyhow::{ensure, Context};
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::collections::BTreeMap;
use std::time::Duration;

fn org() -> OrgName {
    format!("conf-{:08x}", rand::random::<u32>())
        .parse()
        .unwrap_or_else(|_| unreachable!("a valid name"))
}

/// Every check, in order.
pub async fn run_all(lake: &Lake) -> anyhow::Result<()> {
    chunks_write_and_read_back(lake)
        .await
        .context("chunks_write_and_read_back")?;
    listing_by_prefix_finds_only_that_prefix(lake)
        .await
        .context("listing_by_prefix_finds_only_that_prefix")?;
    deleting_a_repository_removes_only_its_chunks(lake)
        .await
        .context("deleting_a_repository_removes_only_its_chunks")?;
    create_only_refuses_an_existing_object(lake)
        .await
        .context("create_only_refuses_an_existing_object")?;
    checkpoints_round_trip(lake)
        .await
        .context("checkpoints_round_trip")?;
    the_lock_is_acquired_refused_and_taken_over_after_expiry(lake)
        .await
        .context("the_lock_is_acquired_refused_and_taken_over_after_expiry")?;
    a_held_lock_is_taken_over_with_force(lake)
        .await
        .context("a_held_lock_is_taken_over_with_force")?;
    Ok(())
}

async fn write_rows(
    lake: &Lake,
    org: &OrgName,
    repo: &str,
    n: u64,
) -> anyhow::Result<Vec<super::ChunkInfo>> {
    let mut w = ChunkWriter::new(
        lake.clone(),
        org.clone(),
        repo.parse()?,
        "2026-05-01".into(),
        "20260501T000000Z-0a0b0c".into(),
        10,
        BTreeMap::new(),
    );
    let mut out = Vec::new();
    for i in 0..n {
        out.extend(
            w.push(
                "issue_comments",
                &serde_json::json!({"i": i, "text": "ünïcödé ✓"}),
            )
            .await?,
        );
    }
    out.extend(w.flush().await?);
    Ok(out)
}

pub async fn chunks_write_and_read_back(lake: &Lake) -> anyhow::Result<()> {
    let org = org();
    let chunks = write_rows(lake, &org, "r", 25).await?;
    ensure!(
        chunks.iter().map(|c| c.rows).collect::<Vec<_>>() == [10, 10, 5],
        "{chunks:?}"
    );
    let mut seen = Vec::new();
    for c in &chunks {
        let bytes = lake.get(&Path::from(c.path.as_str())).await?;
        ensure!(
            bytes.len() as u64 == c.bytes,
            "stored size differs for {}",
            c.path
        );
        seen.extend(
            decode_chunk(&bytes)?
                .into_iter()
                .map(|v| v["i"].as_u64().unwrap_or(u64::MAX)),
        );
    }
    ensure!(
        seen == (0..25).collect::<Vec<u64>>(),
        "rows came back as {seen:?}"
    );
    Ok(())
}

pub async fn listing_by_prefix_finds_only_that_prefix(lake: &Lake) -> anyhow::Result<()> {
    let org = org();
    let a = write_rows(lake, &org, "alpha", 12).await?;
    write_rows(lake, &org, "alpha-2", 3).await?;
    let listed = lake.list(&lake.repo_dir(&org, &"alpha".parse()?)).await?;
    let mut names: Vec<String> = listed.iter().map(|(p, _)| p.to_string()).collect();
    names.sort();
    let mut want: Vec<String> = a.iter().map(|c| c.path.clone()).collect();
    want.sort();
    ensure!(names == want, "listing alpha/ gave {names:?}");
    ensure!(
        listed
            .iter()
            .all(|(p, _)| lake.parse_chunk_path(p).is_some()),
        "listed paths do not parse as chunks"
    );
    Ok(())
}

pub async fn deleting_a_repository_removes_only_its_chunks(lake: &Lake) -> anyhow::Result<()> {
    let org = org();
    write_rows(lake, &org, "gone", 15).await?;
    let kept = write_rows(lake, &org, "kept", 5).await?;
    let n = lake
        .delete_prefix(&lake.repo_dir(&org, &"gone".parse()?))
        .await?;
    ensure!(n == 2, "deleted {n} objects, expected 2");
    ensure!(
        lake.list(&lake.repo_dir(&org, &"gone".parse()?))
            .await?
            .is_empty(),
        "chunks of the deleted repository remain"
    );
    ensure!(
        lake.list(&lake.repo_dir(&org, &"kept".parse()?))
            .await?
            .len()
            == kept.len(),
        "another repository lost chunks"
    );
    Ok(())
}

pub async fn create_only_refuses_an_existing_object(lake: &Lake) -> anyhow::Result<()> {
    let org = org();
    let path = lake.lock_path(&org).clone();
    let create = || PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    lake.store()
        .put_opts(
            &path,
            PutPayload::from_bytes(Bytes::from_static(b"first")),
            create(),
        )
        .await?;
    match lake
        .store()
        .put_opts(
            &path,
            PutPayload::from_bytes(Bytes::from_static(b"second")),
            create(),
        )
        .await
    {
        Err(object_store::Error::AlreadyExists { .. }) => {}
        other => anyhow::bail!("a second create-only write was not refused: {other:?}"),
    }
    ensure!(
        lake.get(&path).await? == Bytes::from_static(b"first"),
        "the first object was overwritten"
    );
    lake.store().delete(&path).await?;
    Ok(())
}

pub async fn checkpoints_round_trip(lake: &Lake) -> anyhow::Result<()> {
    let org = org();
    let store = CheckpointStore::new(lake.clone(), org.clone());
    let t =
        chrono::DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z")?.with_timezone(&chrono::Utc);
    let mut cp = Checkpoint {
        schema_version: super::checkpoint::SCHEMA_VERSION,
        collection_id: "20260501T000000Z-0a0b0c".into(),
        organization: org.to_string(),
        kind: CollectionKind::Backfill,
        window: Window {
            since: t - chrono::Duration::days(30),
            until: t,
        },
        started_at: t,
        updated_at: t,
        status: Status::Running,
        repos: vec![],
        chunks: write_rows(lake, &org, "r", 3).await?,
        api_cost: ApiCost {
            rest_requests: 1,
            graphql_queries: 2,
            graphql_points: 3,
        },
        errors: vec![],
        resumes: 0,
        loaded: false,
        not_collectable_elsewhere: Default::default(),
    };
    store.save(&cp).await?;
    ensure!(
        store.load(&cp.collection_id).await? == cp,
        "checkpoint changed on the way through"
    );
    cp.status = Status::Completed;
    store.save(&cp).await?;
    ensure!(
        store.load(&cp.collection_id).await?.status == Status::Completed,
        "a rewritten checkpoint was not replaced"
    );
    Ok(())
}

pub async fn the_lock_is_acquired_refused_and_taken_over_after_expiry(
    lake: &Lake,
) -> anyhow::Result<()> {
    let org = org();
    let lock = LeaseLock::new(lake.clone(), &org, Duration::from_secs(2));
    let mut a = lock.acquire("20260501T000000Z-00000a").await?;
    match lock.acquire("20260501T000000Z-00000b").await {
        Err(LockError::Held(by)) => ensure!(
            by.record.holder == "20260501T000000Z-00000a",
            "held by {}",
            by.record.holder
        ),
        other => anyhow::bail!("a second run got the lock: {other:?}"),
    }
    lock.renew(&mut a).await?;
    // The holder dies; once the lease runs out another run takes over.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let b = lock.acquire("20260501T000000Z-00000b").await?;
    ensure!(b.record.holder == "20260501T000000Z-00000b");
    match lock.renew(&mut a).await {
        Err(LockError::Lost(by)) => ensure!(by == "20260501T000000Z-00000b", "lost to {by}"),
        other => anyhow::bail!("the old holder renewed a lock it lost: {other:?}"),
    }
    lock.release(a).await?;
    ensure!(
        lock.current().await?.map(|(r, _)| r.holder).as_deref() == Some("20260501T000000Z-00000b"),
        "releasing a lost lease removed the new holder's lock"
    );
    lock.release(b).await?;
    ensure!(
        lock.current().await?.is_none(),
        "release left the lock behind"
    );
    ensure!(
        lock.acquire("20260501T000000Z-00000c").await.is_ok(),
        "a released lock cannot be taken"
    );
    Ok(())
}

/// `--force`: a lock another run holds (a long lease, far from expiry) is refused with its
/// holder's process, then taken over by force; the old holder loses it at its next renewal
/// and its release leaves the new holder's lock alone, even when both hold the same collection
/// (a `resume --force` of a collection whose run is gone).
pub async fn a_held_lock_is_taken_over_with_force(lake: &Lake) -> anyhow::Result<()> {
    let org = org();
    let lock = LeaseLock::new(lake.clone(), &org, Duration::from_secs(3600));
    let id = "20260501T000000Z-00000a";
    let mut first = lock.acquire(id).await?;
    ensure!(
        first.record.pid == Some(std::process::id()),
        "the lock does not name this process: {:?}",
        first.record
    );
    match lock.acquire(id).await {
        Err(LockError::Held(by)) => {
            let text = by.to_string();
            ensure!(
                by.record.pid == Some(std::process::id())
                    && text.contains(&format!("pid {}", std::process::id()))
                    && text.contains("the lease ends in 59m"),
                "the refusal does not name the holder's process and time left: {text}"
            );
        }
        other => anyhow::bail!("a second run got a held lock: {other:?}"),
    }
    // Another taking (a later `acquired_at`), as another process would make it.
    let second = lock.force(id).await?;
    ensure!(
        !second.record.same_owner(&first.record),
        "the forced lease is the old one"
    );
    match lock.renew(&mut first).await {
        Err(LockError::Lost(_)) => {}
        other => anyhow::bail!("the old holder renewed a lock taken by force: {other:?}"),
    }
    lock.release(first).await?;
    let now = lock.current().await?.map(|(r, _)| r);
    ensure!(
        now.as_ref().is_some_and(|r| r.same_owner(&second.record)),
        "the old holder's release removed the forced lock: {now:?}"
    );
    lock.release(second).await?;
    ensure!(lock.current().await?.is_none(), "release left the lock");
    Ok(())
}
