//! Object storage: URLs users write (`s3://bucket/key`, `file:///abs`, a local
//! path, a prefix ending in `/`) become a [`Location`] on an
//! `Arc<dyn ObjectStore>`, so local disk and S3 go through the same code.
//! Publishing writes data objects first and a small manifest last; readers
//! trust only manifests, so a killed writer leaves nothing anyone would read.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// A missing file (local) or object (S3), in its own store's words.
    #[error("{url}: no such {}", if url.starts_with("s3://") { "object" } else { "file" })]
    NotFound { url: String },
    #[error("{url}: {action} failed: {reason}")]
    Io {
        url: String,
        action: &'static str,
        reason: String,
    },
    #[error("cannot configure S3 for {url}: {reason}")]
    Config { url: String, reason: String },
}

/// A parsed storage URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// An absolute local path (relative paths are resolved when parsing).
    Local { path: PathBuf, prefix: bool },
    S3 {
        bucket: String,
        key: String,
        prefix: bool,
    },
}

impl StorageUrl {
    /// Parses a URL or path; a relative local path resolves against `base_dir`.
    /// A trailing `/` marks a prefix: every object under it.
    pub fn parse(input: &str, base_dir: &Path) -> Result<StorageUrl, StorageError> {
        let bad = |reason: &str| StorageError::BadUrl {
            url: input.to_string(),
            reason: reason.to_string(),
        };
        let prefix = input.ends_with('/');
        if input.trim().is_empty() {
            return Err(bad("empty location"));
        }
        if let Some(rest) = input.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("missing bucket name (expected s3://bucket/key)"));
            }
            if !bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            {
                return Err(bad(
                    "invalid bucket name: use lowercase letters, digits, '-' and '.'",
                ));
            }
            let key = key.trim_end_matches('/').to_string();
            if key.split('/').any(|part| part == ".." || part == ".") {
                return Err(bad("'.' and '..' are not allowed in object keys"));
            }
            let prefix = prefix || key.is_empty();
            return Ok(StorageUrl::S3 {
                bucket: bucket.to_string(),
                key,
                prefix,
            });
        }
        let path = if let Some(rest) = input.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("file:// URLs must be absolute (file:///path)"));
            }
            PathBuf::from(rest)
        } else if let Some((scheme, _)) = input.split_once("://") {
            return Err(bad(&format!(
                "unsupported scheme {scheme:?}: use s3://, file:// or a local path"
            )));
        } else {
            base_dir.join(input)
        };
        Ok(StorageUrl::Local {
            path: normalize(&path),
            prefix,
        })
    }

    pub fn is_prefix(&self) -> bool {
        match self {
            StorageUrl::Local { prefix, .. } | StorageUrl::S3 { prefix, .. } => *prefix,
        }
    }
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::Local { path, prefix } => {
                write!(f, "{}{}", path.display(), if *prefix { "/" } else { "" })
            }
            StorageUrl::S3 {
                bucket,
                key,
                prefix,
            } => {
                write!(
                    f,
                    "s3://{bucket}/{key}{}",
                    if *prefix && !key.is_empty() { "/" } else { "" }
                )
            }
        }
    }
}

/// Makes a path absolute and removes `.` and `..` lexically.
fn normalize(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// An object found under a location, by [`Location::objects_under`].
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    /// The key below the location, `/`-separated.
    pub rel: String,
    pub size: u64,
    pub modified: chrono::DateTime<chrono::Utc>,
}

/// A place in object storage: a store and a key (or key prefix) in it.
#[derive(Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    /// Printable form, `s3://bucket/key` or `/abs/path`.
    url: String,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl Location {
    /// A location below this one. `rel` is a `/`-separated relative key built
    /// by recflow from checked names; it can never climb out.
    pub fn child(&self, rel: &str) -> Location {
        let mut key = self.key.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            debug_assert!(part != ".." && part != ".");
            key = key.clone().join(part);
        }
        let url = format!(
            "{}/{}",
            self.url.trim_end_matches('/'),
            rel.trim_matches('/')
        );
        Location {
            store: self.store.clone(),
            key,
            url,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The last part of the key: a file name.
    pub fn file_name(&self) -> &str {
        self.key.filename().unwrap_or("")
    }

    pub async fn get(&self) -> Result<Bytes, StorageError> {
        let result = self
            .store
            .get(&self.key)
            .await
            .map_err(|e| self.error("read", e))?;
        result.bytes().await.map_err(|e| self.error("read", e))
    }

    pub async fn put(&self, data: impl Into<PutPayload>) -> Result<(), StorageError> {
        self.store
            .put(&self.key, data.into())
            .await
            .map_err(|e| self.error("write", e))?;
        Ok(())
    }

    /// A streaming writer for this object.
    pub async fn writer(&self) -> Result<ObjectWriter, StorageError> {
        let upload = self
            .store
            .put_multipart(&self.key)
            .await
            .map_err(|e| self.error("write", e))?;
        Ok(ObjectWriter {
            inner: object_store::WriteMultipart::new_with_chunk_size(upload, 8 << 20),
            url: self.url.clone(),
        })
    }

    /// The object's bytes in order, fetched as consecutive ranged reads of
    /// 8 MiB. Each request completes quickly, so a slow consumer (a batch
    /// job scoring as it reads) pauses between requests rather than in the
    /// middle of one, where an HTTP timeout would end it.
    pub async fn stream(
        &self,
    ) -> Result<futures::stream::BoxStream<'static, Result<bytes::Bytes, String>>, StorageError>
    {
        use futures::StreamExt;
        const RANGE: u64 = 8 << 20;
        let size = self
            .store
            .head(&self.key)
            .await
            .map_err(|e| self.error("read", e))?
            .size;
        let (store, key, url) = (self.store.clone(), self.key.clone(), self.url.clone());
        let stream = futures::stream::unfold(0u64, move |start| {
            let (store, key, url) = (store.clone(), key.clone(), url.clone());
            async move {
                if start >= size {
                    return None;
                }
                let end = (start + RANGE).min(size);
                let chunk = store
                    .get_range(&key, start..end)
                    .await
                    .map_err(|e| format!("{url}: read failed: {}", explain(&e)));
                Some((chunk, end))
            }
        });
        Ok(stream.boxed())
    }

    pub async fn exists(&self) -> Result<bool, StorageError> {
        match self.store.head(&self.key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error("check", e)),
        }
    }

    /// Deletes the object; a missing object is not an error.
    pub async fn delete(&self) -> Result<(), StorageError> {
        match self.store.delete(&self.key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", e)),
        }
    }

    /// Every object under this location as a prefix, sorted by key. Objects
    /// whose name starts with `_` or `.` (markers, manifests, temp files) are
    /// left out, as Spark and Hive readers do.
    pub async fn list(&self) -> Result<Vec<Location>, StorageError> {
        let prefix = if self.key.as_ref().is_empty() {
            None
        } else {
            Some(&self.key)
        };
        let metas: Vec<_> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| self.error("list", e))?;
        let mut out: Vec<Location> = metas
            .into_iter()
            .filter(|m| m.size > 0 || !m.location.as_ref().ends_with('/'))
            .filter(|m| {
                let name = m.location.filename().unwrap_or("");
                !name.starts_with('_') && !name.starts_with('.')
            })
            .map(|m| {
                let rel = m
                    .location
                    .as_ref()
                    .strip_prefix(self.key.as_ref())
                    .unwrap_or(m.location.as_ref());
                self.child(rel.trim_start_matches('/'))
            })
            .collect();
        out.sort_by(|a, b| a.key.as_ref().cmp(b.key.as_ref()));
        Ok(out)
    }

    /// The bytes of every object under this location as a prefix, hidden
    /// ones (markers, manifests) included.
    pub async fn size(&self) -> Result<u64, StorageError> {
        Ok(self.objects().await?.iter().map(|m| m.size).sum())
    }

    /// Deletes every object under this location as a prefix, hidden ones
    /// included, and returns the bytes they held. Markers and manifests go
    /// first (`_SUCCESS`, `_manifest.json`, `manifest.json`), so a reader
    /// that trusts them stops trusting the rest before it goes. Objects
    /// already gone are not an error, so a deletion that stopped halfway
    /// can simply run again. On local disk the emptied folders go too.
    pub async fn delete_all(&self) -> Result<u64, StorageError> {
        let mut objects = self.objects().await?;
        let is_marker = |m: &object_store::ObjectMeta| {
            matches!(
                m.location.filename(),
                Some("_SUCCESS" | "_manifest.json" | "manifest.json")
            )
        };
        objects.sort_by_key(|m| !is_marker(m));
        let mut freed = 0;
        for m in objects {
            match self.store.delete(&m.location).await {
                Ok(()) => freed += m.size,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error("delete", e)),
            }
        }
        if self.url.starts_with('/') {
            remove_empty_dirs(Path::new(&self.url));
        }
        Ok(freed)
    }

    /// Every object under this location as a prefix, hidden ones included:
    /// its key relative to this location, size and last modification.
    pub async fn objects_under(&self) -> Result<Vec<ObjectInfo>, StorageError> {
        Ok(self
            .objects()
            .await?
            .into_iter()
            .map(|m| ObjectInfo {
                rel: m
                    .location
                    .as_ref()
                    .strip_prefix(self.key.as_ref())
                    .unwrap_or(m.location.as_ref())
                    .trim_start_matches('/')
                    .to_string(),
                size: m.size,
                modified: m.last_modified,
            })
            .collect())
    }

    async fn objects(&self) -> Result<Vec<object_store::ObjectMeta>, StorageError> {
        if self.key.as_ref().is_empty() {
            // Never the whole store: a location is always below a root.
            return Err(StorageError::BadUrl {
                url: self.url.clone(),
                reason: "refusing to list or delete a whole store".into(),
            });
        }
        let metas: Vec<_> = match self.store.list(Some(&self.key)).try_collect().await {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(self.error("list", e)),
        };
        Ok(metas)
    }

    fn error(&self, action: &'static str, e: object_store::Error) -> StorageError {
        // S3 answers 404 for a missing bucket too; only the body tells them apart.
        if let object_store::Error::NotFound { .. } = e
            && !chain(&e).contains("NoSuchBucket")
        {
            return StorageError::NotFound {
                url: self.url.clone(),
            };
        }
        StorageError::Io {
            url: self.url.clone(),
            action,
            reason: explain(&e),
        }
    }
}

/// Turns object_store's error into a sentence with the likely fix first.
fn explain(e: &object_store::Error) -> String {
    let text = condense_xml(&chain(e));
    let hint = if text.contains("169.254.169.254") {
        Some(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the instance metadata service gave none)",
        )
    } else if text.contains("NoSuchBucket") {
        Some("the bucket does not exist")
    } else if text.contains("SignatureDoesNotMatch") || text.contains("InvalidAccessKeyId") {
        Some("the S3 credentials were refused; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    } else if text.contains("AccessDenied") || text.contains("403") {
        Some("access denied; check the credentials and the bucket policy")
    } else if text.contains("Connection refused") || text.contains("error sending request") {
        Some("cannot reach the storage endpoint; check AWS_ENDPOINT_URL and that the server is up")
    } else {
        None
    };
    match hint {
        Some(h) => format!("{h} ({})", one_line(&text)),
        None => one_line(&text),
    }
}

/// Replaces an S3 XML error body with its code and message.
fn condense_xml(text: &str) -> String {
    let tag = |name: &str| -> Option<&str> {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(&text[start..end])
    };
    match (
        text.find("<?xml").or_else(|| text.find("<Error>")),
        tag("Code"),
    ) {
        (Some(xml_start), Some(code)) => {
            let message = tag("Message").map(|m| format!(": {m}")).unwrap_or_default();
            let xml_end = text
                .rfind("</Error>")
                .map_or(text.len(), |i| i + "</Error>".len());
            format!("{}{code}{message}{}", &text[..xml_start], &text[xml_end..])
        }
        _ => text.to_string(),
    }
}

/// An error and its sources, joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > 600 {
        format!("{}…", &s[..s.floor_char_boundary(600)])
    } else {
        s
    }
}

/// Writes one object in parts as bytes arrive (a multipart upload); the
/// object appears only when `finish` completes, whole.
pub struct ObjectWriter {
    inner: object_store::WriteMultipart,
    url: String,
}

impl ObjectWriter {
    pub async fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        // Bound the parts in flight, so memory stays flat however big the object.
        self.inner
            .wait_for_capacity(4)
            .await
            .map_err(|e| StorageError::Io {
                url: self.url.clone(),
                action: "write",
                reason: explain(&e),
            })?;
        self.inner.write(data);
        Ok(())
    }

    /// Completes the upload; returns the object's URL.
    pub async fn finish(self) -> Result<String, StorageError> {
        let url = self.url;
        self.inner.finish().await.map_err(|e| StorageError::Io {
            url: url.clone(),
            action: "write",
            reason: explain(&e),
        })?;
        Ok(url)
    }
}

/// Opens locations, keeping one client per S3 bucket.
#[derive(Default, Clone)]
pub struct Storage {
    buckets: Arc<Mutex<HashMap<String, Arc<dyn ObjectStore>>>>,
}

impl Storage {
    pub fn open(&self, url: &StorageUrl) -> Result<Location, StorageError> {
        match url {
            StorageUrl::Local { path, .. } => {
                let key =
                    ObjectPath::from_absolute_path(path).map_err(|e| StorageError::BadUrl {
                        url: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
                Ok(Location {
                    store,
                    key,
                    url: path.display().to_string().trim_end_matches('/').to_string(),
                })
            }
            StorageUrl::S3 { bucket, key, .. } => {
                let store = self.s3(bucket, url)?;
                let key = ObjectPath::parse(key).map_err(|e| StorageError::BadUrl {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
                let printable = format!("s3://{bucket}/{key}")
                    .trim_end_matches('/')
                    .to_string();
                Ok(Location {
                    store,
                    key,
                    url: printable,
                })
            }
        }
    }

    /// Parses and opens in one go.
    pub fn open_str(&self, input: &str, base_dir: &Path) -> Result<Location, StorageError> {
        self.open(&StorageUrl::parse(input, base_dir)?)
    }

    fn s3(&self, bucket: &str, url: &StorageUrl) -> Result<Arc<dyn ObjectStore>, StorageError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = buckets.get(bucket) {
            return Ok(store.clone());
        }
        let config = |reason: String| StorageError::Config {
            url: url.to_string(),
            reason,
        };
        // The standard AWS environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
        // AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if std::env::var("AWS_REGION").is_err()
            && let Ok(region) = std::env::var("AWS_DEFAULT_REGION")
        {
            builder = builder.with_region(region);
        }
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok();
        if let Some(endpoint) = endpoint.as_deref() {
            let parsed = url::Url::parse(endpoint)
                .map_err(|e| config(format!("AWS_ENDPOINT_URL {endpoint:?}: {e}")))?;
            if parsed.scheme() == "http" {
                let loopback = match parsed.host() {
                    Some(url::Host::Domain(d)) => d == "localhost",
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                };
                let allowed =
                    loopback || std::env::var("RECFLOW_S3_ALLOW_HTTP").is_ok_and(|v| v == "true");
                if !allowed {
                    return Err(config(format!(
                        "AWS_ENDPOINT_URL {endpoint} uses plain http, which recflow allows only for a \
                         loopback endpoint; use https, or set RECFLOW_S3_ALLOW_HTTP=true"
                    )));
                }
                builder = builder.with_allow_http(true);
            }
            builder = builder.with_endpoint(endpoint);
        }
        let store: Arc<dyn ObjectStore> = Arc::new(
            builder
                .build()
                .map_err(|e| config(one_line(&e.to_string())))?,
        );
        buckets.insert(bucket.to_string(), store.clone());
        Ok(store)
    }
}

/// Paths from users (API requests, CLI arguments naming warehouse objects)
/// must stay below their root: this joins and refuses anything that climbs out.
pub fn join_under(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.is_absolute() {
        return None;
    }
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Removes `dir` and the folders under it that hold no file, deepest
/// first; a folder that still holds something stays.
fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls_and_prefixes() {
        let base = Path::new("/base");
        assert_eq!(
            StorageUrl::parse("s3://bucket/a/b.csv", base).unwrap(),
            StorageUrl::S3 {
                bucket: "bucket".into(),
                key: "a/b.csv".into(),
                prefix: false
            }
        );
        assert_eq!(
            StorageUrl::parse("s3://bucket/in/", base).unwrap(),
            StorageUrl::S3 {
                bucket: "bucket".into(),
                key: "in".into(),
                prefix: true
            }
        );
        assert!(StorageUrl::parse("s3:///key", base).is_err());
        assert!(StorageUrl::parse("s3://Bucket_/key", base).is_err());
        assert!(StorageUrl::parse("s3://b/../x", base).is_err());
    }

    #[test]
    fn resolves_local_paths_against_the_base() {
        let base = Path::new("/repo/pipelines");
        assert_eq!(
            StorageUrl::parse("../examples/data/u.data", base).unwrap(),
            StorageUrl::Local {
                path: "/repo/examples/data/u.data".into(),
                prefix: false
            }
        );
        assert_eq!(
            StorageUrl::parse("file:///tmp/x/", base).unwrap(),
            StorageUrl::Local {
                path: "/tmp/x".into(),
                prefix: true
            }
        );
        let err = StorageUrl::parse("gs://b/k", base).unwrap_err().to_string();
        assert!(err.contains("unsupported scheme \"gs\""), "{err}");
    }

    #[test]
    fn s3_error_bodies_are_condensed_to_code_and_message() {
        let text = "Error performing GET http://h/b/k - 404 Not Found: <?xml version=\"1.0\"?> <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><Key>k</Key></Error>";
        assert_eq!(
            condense_xml(text),
            "Error performing GET http://h/b/k - 404 Not Found: NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(condense_xml("plain"), "plain");
    }

    #[test]
    fn join_under_refuses_escapes() {
        let root = Path::new("/root/w");
        assert_eq!(join_under(root, "a/b"), Some(PathBuf::from("/root/w/a/b")));
        assert_eq!(join_under(root, "../x"), None);
        assert_eq!(join_under(root, "/etc/passwd"), None);
        assert_eq!(join_under(root, "a/../../x"), None);
    }

    #[tokio::test]
    async fn stream_reads_a_large_object_in_ranges_in_order() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..17_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("big.bin"), &data).unwrap();
        let loc = Storage::default().open_str("big.bin", dir.path()).unwrap();
        let chunks: Vec<bytes::Bytes> = loc
            .stream()
            .await
            .unwrap()
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.concat(), data);
    }

    #[tokio::test]
    async fn local_put_get_list_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::default();
        let root = storage
            .open(
                &StorageUrl::parse(&format!("{}/", dir.path().display()), Path::new("/")).unwrap(),
            )
            .unwrap();
        root.child("a/x.txt")
            .put(Bytes::from_static(b"hello"))
            .await
            .unwrap();
        root.child("a/_SUCCESS").put(Bytes::new()).await.unwrap();
        root.child("b.txt")
            .put(Bytes::from_static(b"b"))
            .await
            .unwrap();
        let listed: Vec<String> = root
            .list()
            .await
            .unwrap()
            .iter()
            .map(|l| l.file_name().to_string())
            .collect();
        assert_eq!(listed, ["x.txt", "b.txt"]);
        assert_eq!(&root.child("a/x.txt").get().await.unwrap()[..], b"hello");
        let missing = root.child("nope").get().await.unwrap_err();
        assert!(matches!(missing, StorageError::NotFound { .. }));
        let path = dir.path().join("nope");
        assert_eq!(
            missing.to_string(),
            format!("{}: no such file", path.display())
        );
    }
}
