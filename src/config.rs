//! Where recflow keeps its state: the home folder (`./.recflow` unless
//! `--home` or `RECFLOW_HOME` says otherwise), the state store URL
//! (`RECFLOW_STATE_URL`, default SQLite in the home) and the warehouse
//! (`RECFLOW_WAREHOUSE`, default `<home>/warehouse`; may be `s3://...`).
//! Secrets never live here: S3 credentials come from the AWS environment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::storage::{Location, Storage, StorageUrl};
use crate::store::{self, StateStore};

/// Resolved locations, before anything is opened.
#[derive(Debug, Clone)]
pub struct Settings {
    pub home: PathBuf,
    pub state_url: String,
    pub warehouse_url: String,
}

impl Settings {
    /// `home` from `--home`; otherwise the environment, otherwise `./.recflow`.
    pub fn resolve(home: Option<&Path>) -> Settings {
        let home = home
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("RECFLOW_HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(".recflow"));
        let home = std::path::absolute(&home).unwrap_or(home);
        let state_url = std::env::var("RECFLOW_STATE_URL")
            .unwrap_or_else(|_| format!("sqlite://{}", home.join("state.db").display()));
        let warehouse_url = std::env::var("RECFLOW_WAREHOUSE")
            .unwrap_or_else(|_| format!("{}/", home.join("warehouse").display()));
        Settings {
            home,
            state_url,
            warehouse_url,
        }
    }
}

/// The handles every command and step uses.
#[derive(Clone)]
pub struct Env {
    pub settings: Settings,
    pub store: Arc<dyn StateStore>,
    pub storage: Storage,
    /// Root of the warehouse: datasets, models and default exports.
    pub warehouse: Location,
}

impl Env {
    pub async fn open(settings: Settings) -> anyhow::Result<Env> {
        std::fs::create_dir_all(&settings.home).with_context(|| {
            format!("cannot create the recflow home {}", settings.home.display())
        })?;
        let store: Arc<dyn StateStore> = store::open(&settings.state_url).await?.into();
        let storage = Storage::default();
        let url = StorageUrl::parse(&settings.warehouse_url, &settings.home)
            .context("RECFLOW_WAREHOUSE")?;
        let warehouse = storage.open(&url).context("RECFLOW_WAREHOUSE")?;
        Ok(Env {
            settings,
            store,
            storage,
            warehouse,
        })
    }
}
