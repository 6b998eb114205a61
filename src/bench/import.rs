//! `recflow bench import`: import throughput against a baseline measured in
//! the same run. The baseline is what any import must do at least: a plain
//! polars read of the same file and a Parquet write of the result, with no
//! validation, no transform and no state store. The ratio says what
//! validation, rejected-row tracking and publishing cost.
//!
//! Run it on an optimised build: `cargo run --release -- bench import`.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use polars::prelude::*;

use crate::config::{Env, Settings};
use crate::dataset::import::{ImportJob, ImportSpec, run_import};
use crate::outln;
use crate::schema::{AvroSchema, DatasetType, Schema};

#[derive(Debug, Args)]
pub struct ImportBenchArgs {
    /// Online Retail interactions CSV (407,664 rows).
    #[arg(
        long,
        default_value = "../shared/datasets/online_retail/interactions.csv"
    )]
    pub interactions: PathBuf,
    /// The raw Online Retail II sheet as Parquet (525,461 rows).
    #[arg(
        long,
        default_value = "examples/data/online_retail/online_retail_ii_2009_2010.parquet"
    )]
    pub raw: PathBuf,
    /// Repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

const SCHEMA: &str = r#"{"type": "record", "name": "Interactions", "fields": [
  {"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
  {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"},
  {"name": "EVENT_VALUE", "type": ["null", "float"]}]}"#;

/// The derived CSV: rename its columns, keep quantity as the event value.
const CSV_SPEC: &str = r#"
dataset: interactions
source: PLACEHOLDER
sql: |
  SELECT user_id AS USER_ID, item_id AS ITEM_ID, timestamp AS TIMESTAMP,
         'purchase' AS EVENT_TYPE, quantity AS EVENT_VALUE
  FROM source
"#;

/// The raw sheet: the same SQL the online-retail example pipeline uses.
const RAW_SPEC: &str = r#"
dataset: interactions
source: PLACEHOLDER
sql: |
  SELECT "Customer ID" AS USER_ID, StockCode AS ITEM_ID, InvoiceDate AS TIMESTAMP,
         'purchase' AS EVENT_TYPE, Quantity AS EVENT_VALUE
  FROM source
  WHERE "Customer ID" IS NOT NULL AND Quantity > 0 AND Price > 0 AND Invoice NOT LIKE 'C%'
"#;

struct Case {
    name: &'static str,
    path: PathBuf,
    spec: ImportSpec,
}

pub async fn import(args: ImportBenchArgs) -> anyhow::Result<()> {
    let avro: AvroSchema = serde_json::from_str(SCHEMA)?;
    let schema = Schema::from_avro(DatasetType::Interactions, &avro)
        .map_err(|p| anyhow::anyhow!(p.join("; ")))?;
    let mut cases = Vec::new();
    for (name, path, yaml) in [
        ("interactions.csv", &args.interactions, CSV_SPEC),
        ("raw sheet .parquet", &args.raw, RAW_SPEC),
    ] {
        let path = std::path::absolute(path)?;
        anyhow::ensure!(
            path.exists(),
            "{} not found; pass --{} PATH",
            path.display(),
            if name.ends_with("csv") {
                "interactions"
            } else {
                "raw"
            }
        );
        let mut spec: ImportSpec = serde_yaml::from_str(yaml)?;
        spec.source = path.display().to_string();
        cases.push(Case { name, path, spec });
    }

    let home = tempfile::tempdir()?;
    let env = Env::open(Settings {
        home: home.path().to_path_buf(),
        state_url: format!("sqlite://{}/state.db", home.path().display()),
        warehouse_url: format!("{}/warehouse/", home.path().display()),
    })
    .await?;

    outln!(
        "{:<20} {:>9} {:>7} {:>10} {:>12} {:>8} {:>12} {:>8} {:>7}",
        "source",
        "rows in",
        "MB",
        "recflow s",
        "rows/s",
        "MB/s",
        "baseline s",
        "MB/s",
        "ratio"
    );
    for case in &cases {
        let bytes = std::fs::read(&case.path).with_context(|| case.path.display().to_string())?;
        let mb = bytes.len() as f64 / 1e6;
        let is_csv = case.path.extension().is_some_and(|e| e == "csv");
        let mut baseline = Vec::new();
        let mut ours = Vec::new();
        let mut rows_in = 0;
        let mut rows_out = 0;
        for _ in 0..args.repeat.max(1) {
            let data = bytes.clone();
            let (t, n) =
                tokio::task::spawn_blocking(move || plain_read_write(data, is_csv)).await??;
            baseline.push(t);
            rows_in = n;
            let started = Instant::now();
            let report = run_import(
                &env,
                ImportJob {
                    spec: &case.spec,
                    schema: &schema,
                    dataset_group: "bench",
                    base_dir: home.path(),
                    run_id: None,
                    step_id: None,
                },
            )
            .await?;
            ours.push(started.elapsed());
            rows_out = report.manifest.rows;
        }
        let (b, o) = (median(&mut baseline), median(&mut ours));
        outln!(
            "{:<20} {:>9} {:>7.1} {:>10.3} {:>12.0} {:>8.1} {:>12.3} {:>8.1} {:>7.2}",
            case.name,
            rows_in,
            mb,
            o.as_secs_f64(),
            rows_in as f64 / o.as_secs_f64(),
            mb / o.as_secs_f64(),
            b.as_secs_f64(),
            mb / b.as_secs_f64(),
            b.as_secs_f64() / o.as_secs_f64(),
        );
        outln!("{:<20} ({} valid rows published)", "", rows_out);
    }
    outln!(
        "ratio = recflow throughput / baseline throughput (1.00 = as fast as a plain read and write)"
    );
    Ok(())
}

/// The baseline: polars reads the file (types inferred) and writes Parquet.
fn plain_read_write(data: Vec<u8>, csv: bool) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let mut df = if csv {
        CsvReadOptions::default()
            .into_reader_with_file_handle(Cursor::new(data))
            .finish()?
    } else {
        ParquetReader::new(Cursor::new(data)).finish()?
    };
    let mut out = Vec::new();
    ParquetWriter::new(&mut out)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)?;
    Ok((started.elapsed(), df.height()))
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}
