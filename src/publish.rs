//! Publishing: data first, the small manifest last, so that a reader who
//! trusts only manifests and markers never sees a partial output, and a
//! failed or killed writer leaves nothing a reader would use. Two shapes:
//!
//! - A **version** (dataset, solution, predictor) is immutable: the state
//!   store allocates its number (`creating`), its files go under
//!   `<prefix>/v<N>/`, `manifest.json` is written last, then the version
//!   becomes `active`. On any failure it is marked `failed`.
//! - An **export** (batch outputs, forecasts) rewrites a fixed prefix each
//!   run: the old `_SUCCESS` marker goes first, then the files the old
//!   `_manifest.json` listed and that manifest; the new files are written,
//!   then `_manifest.json`, then `_SUCCESS`.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::storage::{Location, StorageError};
use crate::store::{StateStore, StoreError, VersionKind};

/// A version's manifest, in its folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// An export's manifest, beside its files.
pub const EXPORT_MANIFEST_FILE: &str = "_manifest.json";
/// An export's completion marker, written last.
pub const SUCCESS_FILE: &str = "_SUCCESS";

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot write the manifest: {0}")]
    Manifest(#[from] serde_json::Error),
}

/// Publishes a new version of `owner` under `prefix/v<N>/`: allocates it,
/// lets `files(N, folder)` write its files and return its manifest (and
/// whatever else the caller wants back), writes `manifest.json` last, then
/// marks the version active. If anything fails the version is marked failed
/// (readers never see it) and the error returned.
pub async fn publish_version<M, R, E, F, Fut>(
    store: &dyn StateStore,
    kind: VersionKind,
    owner: &str,
    (run_id, step_id): (Option<i64>, Option<&str>),
    prefix: &Location,
    files: F,
) -> Result<(M, R), E>
where
    M: Serialize,
    E: From<PublishError> + std::fmt::Display,
    F: FnOnce(i64, Location) -> Fut,
    Fut: Future<Output = Result<(M, R), E>>,
{
    let version = store
        .create_version(kind, owner, run_id, step_id, prefix.url())
        .await
        .map_err(|e| E::from(PublishError::from(e)))?;
    let folder = prefix.child(&format!("v{version}"));
    let publish = async {
        let (manifest, extra) = files(version, folder.clone()).await?;
        let activate = async {
            let json = serde_json::to_value(&manifest)?;
            folder
                .child(MANIFEST_FILE)
                .put(serde_json::to_vec_pretty(&json)?)
                .await?;
            store.activate_version(kind, owner, version, &json).await?;
            Ok::<_, PublishError>(())
        };
        activate.await?;
        Ok::<_, E>((manifest, extra))
    };
    match publish.await {
        Ok(done) => Ok(done),
        Err(e) => {
            // Best effort: the writer's own error is what the user needs.
            let _ = store
                .fail_version(kind, owner, version, &e.to_string())
                .await;
            Err(e)
        }
    }
}

/// An export's manifest: it lists the files the export wrote, so that the
/// next export of the same prefix can remove them.
pub trait ExportManifest: Serialize + DeserializeOwned {
    /// The URLs of every file the export wrote (under its prefix).
    fn files(&self) -> Vec<&str>;
}

/// An export being written to a prefix; see the module's description.
pub struct Export {
    output: Location,
}

impl Export {
    /// Starts an export to `output`: removes an earlier one's marker first
    /// (so no reader trusts the prefix while it changes), then the files its
    /// manifest listed, then that manifest.
    pub async fn begin<M: ExportManifest>(output: &Location) -> Result<Export, PublishError> {
        output.child(SUCCESS_FILE).delete().await?;
        let manifest = output.child(EXPORT_MANIFEST_FILE);
        if let Ok(bytes) = manifest.get().await
            && let Ok(old) = serde_json::from_slice::<M>(&bytes)
        {
            for url in old.files() {
                if let Some(rel) = url.strip_prefix(output.url()) {
                    output.child(rel.trim_start_matches('/')).delete().await?;
                }
            }
        }
        manifest.delete().await?;
        Ok(Export {
            output: output.clone(),
        })
    }

    /// Where the export goes.
    pub fn output(&self) -> &Location {
        &self.output
    }

    /// Writes one file of the export at `rel` under its prefix; returns its URL.
    pub async fn put(
        &self,
        rel: &str,
        bytes: impl Into<bytes::Bytes>,
    ) -> Result<String, PublishError> {
        let loc = self.output.child(rel);
        loc.put(bytes.into()).await?;
        Ok(loc.url().to_string())
    }

    /// Ends the export: `_manifest.json`, then `_SUCCESS`.
    pub async fn finish<M: ExportManifest>(self, manifest: &M) -> Result<(), PublishError> {
        self.output
            .child(EXPORT_MANIFEST_FILE)
            .put(serde_json::to_vec_pretty(manifest)?)
            .await?;
        self.output.child(SUCCESS_FILE).put(Vec::new()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    #[derive(Serialize, serde::Deserialize)]
    struct Listing {
        outputs: Vec<String>,
    }

    impl ExportManifest for Listing {
        fn files(&self) -> Vec<&str> {
            self.outputs.iter().map(String::as_str).collect()
        }
    }

    #[tokio::test]
    async fn an_export_replaces_the_previous_one_marker_last() {
        let dir = tempfile::tempdir().unwrap();
        let root = Storage::default()
            .open_str(&format!("{}/", dir.path().display()), dir.path())
            .unwrap();
        let out = root.child("export/");

        let first = Export::begin::<Listing>(&out).await.unwrap();
        let a = first.put("part-0.csv", b"a".to_vec()).await.unwrap();
        let b = first.put("part-1.csv", b"b".to_vec()).await.unwrap();
        assert!(
            out.child(SUCCESS_FILE).get().await.is_err(),
            "no marker before finish"
        );
        first
            .finish(&Listing {
                outputs: vec![a, b],
            })
            .await
            .unwrap();
        assert!(out.child(SUCCESS_FILE).get().await.is_ok());

        // The next export removes the marker and both old parts before it
        // writes, so a reader never mixes the two exports.
        let second = Export::begin::<Listing>(&out).await.unwrap();
        assert!(out.child(SUCCESS_FILE).get().await.is_err());
        assert!(out.child("part-1.csv").get().await.is_err());
        let a = second.put("part-0.csv", b"new".to_vec()).await.unwrap();
        second.finish(&Listing { outputs: vec![a] }).await.unwrap();
        assert_eq!(
            out.child("part-0.csv").get().await.unwrap().as_ref(),
            b"new"
        );
        assert!(out.child("part-1.csv").get().await.is_err());
    }
}
