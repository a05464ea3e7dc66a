//! A gs:// lake on fake-gcs-server that jobs can write to. fake-gcs-server 1.54 lacks the XML
//! upload API that object_store writes with (`400 invalid uploadType`), so this store sends
//! reads, listings, copies and deletes to object_store's GCS client and uploads each written
//! object whole through the emulator's JSON API instead. Everything else the code under test
//! does with the lake (and BigQuery's load jobs reading `gs://` URIs) meets the emulator as it
//! would meet GCS.

use async_trait::async_trait;
use futures::stream::BoxStream;
use ghstats::config::StorageUrl;
use ghstats::lake::Lake;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use std::sync::Arc;

/// The test bucket on fake-gcs-server.
#[derive(Clone, Debug)]
pub struct GcsBucket {
    /// `http://127.0.0.1:PORT/`
    pub endpoint: url::Url,
    pub bucket: String,
}

impl GcsBucket {
    /// The bucket scripts/services.sh made, or `None` (with a note) when it is not running.
    pub fn from_env() -> Option<GcsBucket> {
        let endpoint = super::test_server("GHSTATS_TEST_GCS_ENDPOINT")?;
        let bucket =
            std::env::var("GHSTATS_TEST_GCS_BUCKET").unwrap_or_else(|_| "ghstats-test".into());
        Some(GcsBucket { endpoint, bucket })
    }

    /// A lake at `gs://BUCKET/{prefix}` whose writes go through the JSON API (see the module).
    pub fn writable_lake(&self, prefix: &str) -> Lake {
        let url: StorageUrl = format!("gs://{}", self.bucket).parse().unwrap();
        let gcs = Lake::open(&url, Some(&self.endpoint)).unwrap();
        let store = JsonApiWrites {
            inner: gcs.store().clone(),
            gcs: self.clone(),
        };
        Lake::new(Arc::new(store), Some(Path::from(prefix))).with_gcs_bucket(&self.bucket)
    }

    /// Uploads one object whole through the JSON API.
    async fn upload(&self, name: &str, bytes: Vec<u8>) -> object_store::Result<()> {
        let r = reqwest::Client::new()
            .post(format!(
                "{}upload/storage/v1/b/{}/o",
                self.endpoint, self.bucket
            ))
            .query(&[("uploadType", "media"), ("name", name)])
            .body(bytes)
            .send()
            .await
            .map_err(|e| generic(e.to_string()))?;
        if !r.status().is_success() {
            return Err(generic(format!("uploading {name}: HTTP {}", r.status())));
        }
        Ok(())
    }
}

fn generic(message: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "fake-gcs-server JSON API",
        source: message.into(),
    }
}

#[derive(Debug)]
struct JsonApiWrites {
    inner: Arc<dyn ObjectStore>,
    gcs: GcsBucket,
}

impl std::fmt::Display for JsonApiWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonApiWrites({})", self.inner)
    }
}

fn put_result() -> PutResult {
    PutResult {
        e_tag: None,
        version: None,
        extensions: Default::default(),
    }
}

#[async_trait]
impl ObjectStore for JsonApiWrites {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        // Only plain overwrites: conditional writes (the lock) are not what this store is for.
        if !matches!(opts.mode, PutMode::Overwrite) {
            return Err(object_store::Error::NotImplemented {
                operation: "conditional put on fake-gcs-server".into(),
                implementer: self.to_string(),
            });
        }
        let bytes: bytes::Bytes = payload.into();
        self.gcs.upload(location.as_ref(), bytes.to_vec()).await?;
        Ok(put_result())
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Ok(Box::new(WholeUpload {
            gcs: self.gcs.clone(),
            name: location.to_string(),
            parts: Vec::new(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A multipart upload kept in memory and sent whole when completed.
#[derive(Debug)]
struct WholeUpload {
    gcs: GcsBucket,
    name: String,
    /// Parts in the order `put_part` was called, which is their order in the object.
    parts: Vec<bytes::Bytes>,
}

#[async_trait]
impl MultipartUpload for WholeUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.parts.push(data.into());
        Box::pin(async { Ok(()) })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let all: Vec<u8> = std::mem::take(&mut self.parts).concat();
        self.gcs.upload(&self.name, all).await?;
        Ok(put_result())
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.parts.clear();
        Ok(())
    }
}
