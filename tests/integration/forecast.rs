//! Demand forecasting end to end: time series imports, `forecast_train`
//! backtests and choice, `forecast` exports, `recflow forecast metrics` and
//! `plot`, and what bad input and bad settings get.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{Home, fails, ok, repo};

/// The example's orange juice files, limited to `stores`, copied under the
/// test folder as `data/{sales,prices,actuals,items}.csv`.
fn oj(home: &Home, stores: &[&str]) {
    for name in ["sales", "prices", "actuals", "items"] {
        let text =
            std::fs::read_to_string(repo().join(format!("examples/data/orange_juice/{name}.csv")))
                .unwrap();
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            let store = line.split('_').next().unwrap_or("");
            if i == 0 || stores.contains(&store) {
                out.push_str(line);
                out.push('\n');
            }
        }
        home.write(&format!("data/{name}.csv"), out);
    }
}

const DATASETS: &str = r#"
datasets:
  target_time_series:
    frequency: weekly
    fill: zero
  related_time_series:
    schema:
      fields:
        - {name: item_id, type: string}
        - {name: timestamp, type: long}
        - {name: price, type: double}
        - {name: deal, type: double}
        - {name: feat, type: double}
"#;

const IMPORTS: &str = r#"
  - id: import_sales
    type: import
    dataset: target_time_series
    source: data/sales.csv
    rename: {date: timestamp, units: target_value}
  - id: import_prices
    type: import
    dataset: related_time_series
    source: data/prices.csv
    rename: {date: timestamp}
"#;

fn pipeline(predictors: &str, steps: &str) -> String {
    format!(
        "name: fc\ndataset_group: oj\n{DATASETS}\npredictors:\n{predictors}\nsteps:\n{IMPORTS}{steps}"
    )
}

fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|row| {
            header
                .iter()
                .cloned()
                .zip(row.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

fn num(row: &BTreeMap<String, String>, k: &str) -> f64 {
    row[k]
        .parse()
        .unwrap_or_else(|_| panic!("{k} = {:?}", row[k]))
}

#[test]
fn a_pipeline_backtests_chooses_per_item_and_exports_quantile_forecasts() {
    let home = Home::new();
    oj(&home, &["2", "5"]);
    let file = home.write(
        "forecast.yaml",
        pipeline(
            r#"
  demand:
    algorithm: auto
    candidates: [seasonal_naive, ets, theta, arima]
    auto_choice: item
    horizon: 8
    backtest_windows: 2
"#,
            r#"
  - id: train
    type: forecast_train
    depends_on: [import_sales, import_prices]
    predictor: demand
  - id: forecast
    type: forecast
    depends_on: [train]
    predictor: demand
    output: out/forecasts/
    plot_top: 3
"#,
        ),
    );
    let run = ok(home.cmd().arg("run").arg(&file));
    assert!(run.stdout.contains("demand v1"), "{}", run.stdout);

    // The export: every item × 8 weeks, ordered quantiles, non-negative
    // (demand), dated the 8 weeks after the last sale.
    let out = home.path().join("out/forecasts");
    assert!(out.join("_SUCCESS").exists());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["items"], 22);
    assert_eq!(manifest["rows"], 22 * 8);
    assert_eq!(manifest["plots"].as_array().unwrap().len(), 3);
    let rows = csv_rows(&out.join("forecast-00000.csv"));
    assert_eq!(rows.len(), 22 * 8);
    assert_eq!(
        rows[0].keys().cloned().collect::<Vec<_>>(),
        ["date", "item_id", "mean", "p10", "p50", "p90"]
    );
    for r in &rows {
        let (lo, mid, hi) = (num(r, "p10"), num(r, "p50"), num(r, "p90"));
        assert!(0.0 <= lo && lo <= mid && mid <= hi, "{r:?}");
    }
    let dates: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["date"].as_str()).collect();
    assert_eq!(dates.len(), 8);
    assert_eq!(dates.first().copied(), Some("1992-08-10T00:00:00Z"));
    assert_eq!(dates.last().copied(), Some("1992-09-28T00:00:00Z"));

    // The forecast is useful: against the held-out 8 weeks it beats
    // repeating each item's last week.
    let actual: BTreeMap<(String, String), f64> = csv_rows(&home.path().join("data/actuals.csv"))
        .iter()
        .map(|r| {
            (
                (
                    r["item_id"].clone(),
                    format!("{}T00:00:00Z", next_monday(&r["date"])),
                ),
                num(r, "units"),
            )
        })
        .collect();
    let last_week: BTreeMap<String, f64> = csv_rows(&home.path().join("data/sales.csv"))
        .iter()
        .filter(|r| r["date"] == "1992-08-06")
        .map(|r| (r["item_id"].clone(), num(r, "units")))
        .collect();
    let (mut err, mut naive_err, mut total) = (0.0, 0.0, 0.0);
    for r in &rows {
        if let Some(y) = actual.get(&(r["item_id"].clone(), r["date"].clone())) {
            err += (y - num(r, "p50")).abs();
            naive_err += (y - last_week.get(&r["item_id"]).copied().unwrap_or(0.0)).abs();
            total += y;
        }
    }
    assert!(total > 0.0, "actuals matched no forecast row");
    assert!(
        err < naive_err,
        "WAPE {} vs naive {}",
        err / total,
        naive_err / total
    );

    // Metrics: per quantile and overall, for the choice and each candidate.
    let m = ok(home
        .cmd()
        .args(["forecast", "metrics", "demand", "--worst", "2"]));
    for needle in [
        "wQL[0.1]",
        "wQL[0.5]",
        "wQL[0.9]",
        "AVG wQL",
        "WAPE",
        "RMSE",
        "MAPE",
        "MASE",
        "chosen (",
        "arima",
        "theta",
        "items per algorithm",
    ] {
        assert!(m.stdout.contains(needle), "{needle} missing:\n{}", m.stdout);
    }
    let list = ok(home.cmd().args(["forecast", "list"]));
    assert!(
        list.stdout.contains("demand") && list.stdout.contains("active"),
        "{}",
        list.stdout
    );

    // Each item got its own algorithm; items.csv records it.
    let items = csv_rows(&home.warehouse().join("predictors/demand/v1/items.csv"));
    assert_eq!(items.len(), 22);
    assert!(items.iter().all(|r| ["seasonal_naive", "ets", "theta", "arima"].contains(&r["algorithm"].as_str())));
    assert!(items.iter().all(|r| r["windows"] == "2"), "{items:?}");

    // A plot of one item, and a clear error for an unknown one.
    let svg_path = home.path().join("2_1.svg");
    ok(home
        .cmd()
        .args(["forecast", "plot", "--item", "2_1", "--out"])
        .arg(&svg_path));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..80]
    );
    assert!(
        svg.contains("2_1") && svg.contains("backtest"),
        "title and backtest windows"
    );
    // The legend names the predictor's own quantiles (0.1, 0.5, 0.9).
    assert!(
        svg.contains(">80% interval (P10–P90)<") && !svg.contains("P05") && !svg.contains("P25"),
        "legend"
    );
    // `--zoom` shows the last three horizons of history: 1990 is gone.
    let zoomed = home.path().join("2_1-zoom.svg");
    ok(home
        .cmd()
        .args(["forecast", "plot", "--item", "2_1", "--zoom", "--out"])
        .arg(&zoomed));
    let zoomed = std::fs::read_to_string(&zoomed).unwrap();
    assert!(svg.contains(">1990<") && !zoomed.contains(">1990<"));
    assert!(zoomed.contains(">80% interval (P10–P90)<"));
    let e = fails(home.cmd().args(["forecast", "plot", "--item", "nope"]));
    assert!(
        e.stderr.contains("has no item \"nope\" (22 items"),
        "{}",
        e.stderr
    );
    // A PNG, by the file's extension or --format; by default under the
    // home's plots/ folder, never the current folder.
    let png_path = home.path().join("2_1.png");
    ok(home
        .cmd()
        .args(["forecast", "plot", "demand", "--item", "2_1", "--out"])
        .arg(&png_path));
    let png = std::fs::read(&png_path).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    // 960×420 drawn at twice the size.
    assert_eq!(&png[16..24], &[0, 0, 7, 128, 0, 0, 3, 72]);
    let here = home.path().join("cwd");
    std::fs::create_dir_all(&here).unwrap();
    let r = ok(home
        .cmd()
        .current_dir(&here)
        .args(["forecast", "plot", "--item", "2_1", "--format", "png"]));
    let written = home.home().join("plots/demand/v1/2_1.png");
    assert!(
        r.stdout.contains(&written.display().to_string()),
        "{}",
        r.stdout
    );
    assert!(std::fs::read(&written).unwrap().starts_with(b"\x89PNG"));
    assert_eq!(
        std::fs::read_dir(&here).unwrap().count(),
        0,
        "wrote into the current folder"
    );
    let dir = home.path().join("plots-here");
    ok(home
        .cmd()
        .args(["forecast", "plot", "--item", "2_1", "--out"])
        .arg(&dir));
    assert!(dir.join("2_1.svg").exists());
    let e = fails(home.cmd().args([
        "forecast", "plot", "demand", "--item", "2_1", "--out", "x.svg", "--format", "png",
    ]));
    assert!(
        e.stderr.contains("names a svg file but --format is png"),
        "{}",
        e.stderr
    );

    // Re-running replaces the export whole: the same files, a new manifest.
    ok(home.cmd().arg("run").arg(&file));
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(again["predictor_version"], 2);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("forecast-")).count(),
        1,
        "{names:?}"
    );
}

/// The weekly period a date falls in starts on Monday; sales are dated on
/// Thursdays, so the forecast row of a sale is dated the Monday before.
fn next_monday(date: &str) -> String {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    use chrono::Datelike;
    (d - chrono::Duration::days(d.weekday().num_days_from_monday() as i64)).to_string()
}

#[test]
fn the_global_model_learns_from_prices() {
    let home = Home::new();
    oj(&home, &["2", "5", "8"]);
    let file = home.write(
        "forecast.yaml",
        pipeline(
            r#"
  with-price:
    algorithm: global
    horizon: 8
  without-price:
    algorithm: global
    horizon: 8
    use_related: false
"#,
            r#"
  - id: train_with
    type: forecast_train
    depends_on: [import_sales, import_prices]
    predictor: with-price
  - id: train_without
    type: forecast_train
    depends_on: [import_sales]
    predictor: without-price
  - id: forecast
    type: forecast
    depends_on: [train_with]
    predictor: with-price
    output_format: parquet
    output: out/
"#,
        ),
    );
    ok(home.cmd().arg("run").arg(&file));
    let wape = |p: &str| -> (f64, f64) {
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                home.warehouse()
                    .join(format!("predictors/{p}/v1/manifest.json")),
            )
            .unwrap(),
        )
        .unwrap();
        (
            m["metrics"]["wape"].as_f64().unwrap(),
            m["metrics"]["average_wql"].as_f64().unwrap(),
        )
    };
    let (with, without) = (wape("with-price"), wape("without-price"));
    assert!(
        with.0 < without.0 && with.1 < without.1,
        "with price {with:?}, without {without:?}"
    );
    let out = home.path().join("out");
    assert!(out.join("_SUCCESS").exists() && out.join("forecast-00000.parquet").exists());
    assert!(
        home.warehouse()
            .join("predictors/with-price/v1/global_model.json")
            .exists()
    );
    // The global model's own backtests are kept for plots.
    let svg = home.path().join("p.svg");
    ok(home
        .cmd()
        .args(["forecast", "plot", "with-price", "--item", "5_3", "--out"])
        .arg(&svg));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("backtest"));
}

#[test]
fn item_metadata_feeds_the_global_model_once_imported() {
    let home = Home::new();
    oj(&home, &["2", "5"]);
    let items = r#"
  items:
    schema:
      fields:
        - {name: ITEM_ID, type: string}
        - {name: brand, type: string, categorical: true}
        - {name: size_oz, type: int}
        - {name: store, type: string, categorical: true}
        - {name: store_log_income, type: double}
"#;
    let yaml = |steps: &str| {
        pipeline(
            r#"
  with-metadata:
    algorithm: global
    horizon: 8
  without-metadata:
    algorithm: global
    horizon: 8
    use_item_metadata: false
"#,
            steps,
        )
        .replace("\npredictors:", &format!("{items}\npredictors:"))
    };
    let train = r#"
  - id: train
    type: forecast_train
    depends_on: [import_sales, import_prices]
    predictor: with-metadata
"#;
    // Declared but not imported yet: training says what to do.
    let file = home.write("first.yaml", yaml(train));
    let out = fails(home.cmd().arg("run").arg(&file)).all();
    assert!(
        out.contains("oj/items has no active version yet")
            && out.contains("use_item_metadata: false"),
        "{out}"
    );
    let file = home.write(
        "forecast.yaml",
        yaml(
            r#"
  - id: import_items
    type: import
    dataset: items
    source: data/items.csv
    rename: {item_id: ITEM_ID}
  - id: train
    type: forecast_train
    depends_on: [import_sales, import_prices, import_items]
    predictor: with-metadata
  - id: train_without
    type: forecast_train
    depends_on: [import_sales, import_prices]
    predictor: without-metadata
  - id: forecast
    type: forecast
    depends_on: [train]
    predictor: with-metadata
    output: out/
"#,
        ),
    );
    ok(home.cmd().arg("run").arg(&file));
    let json = |path: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(home.warehouse().join(path)).unwrap()).unwrap()
    };
    // The failed first training created no version.
    let m = json("predictors/with-metadata/v1/manifest.json");
    assert_eq!(
        m["item_attributes"],
        serde_json::json!(["brand", "size_oz", "store", "store_log_income"])
    );
    assert!(m["dataset_versions"]["items"].is_i64(), "{m}");
    let model = json("predictors/with-metadata/v1/global_model.json");
    let attributes = &model["config"]["attributes"];
    assert_eq!(attributes[0]["name"], "brand");
    assert!(
        attributes[0]["levels"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("Florida's Natural")),
        "{attributes}"
    );
    assert_eq!(attributes[2]["levels"], serde_json::json!(["2", "5"]));
    assert_eq!(
        json("predictors/without-metadata/v1/manifest.json")["item_attributes"],
        serde_json::json!([])
    );
    let rows = csv_rows(&home.path().join("out/forecast-00000.csv"));
    assert_eq!(rows.len(), 22 * 8);
    let metrics = ok(home.cmd().args(["forecast", "metrics", "with-metadata"])).stdout;
    assert!(
        metrics.contains("item metadata brand, size_oz, store, store_log_income"),
        "{metrics}"
    );
}

/// A file with every kind of mistake in its forecasting settings;
/// `{TARGET}` is the target dataset's settings.
const BAD: &str = r#"
name: bad
dataset_group: g
datasets:
  target_time_series: {TARGET}
  interactions:
    frequency: daily
    schema:
      fields:
        - {name: USER_ID, type: string}
        - {name: ITEM_ID, type: string}
        - {name: TIMESTAMP, type: long}
predictors:
  p:
    algorithm: prophet
    horizon: 0
    quantiles: [0.1, 1.5]
steps:
  - id: train
    type: forecast_train
    predictor: p
  - id: out
    type: forecast
    predictor: q
"#;

#[test]
fn bad_forecast_settings_are_reported_with_their_yaml_paths() {
    let home = Home::new();
    // A value that does not parse stops at the parser, with its path.
    let file = home.write("bad.yaml", BAD.replace("{TARGET}", "{fill: sometimes}"));
    let text = fails(home.cmd().arg("validate").arg(&file)).all();
    assert!(text.contains("unknown fill \"sometimes\""), "{text}");
    assert!(text.contains("datasets.target_time_series.fill"), "{text}");

    // Otherwise every problem is reported at once.
    let file = home.write("bad2.yaml", BAD.replace("{TARGET}", "{}"));
    let text = fails(home.cmd().arg("validate").arg(&file)).all();
    for needle in [
        "datasets.target_time_series.frequency: required",
        "datasets.interactions.frequency: only time series datasets",
        "predictors.p.algorithm: unknown algorithm \"prophet\"",
        "predictors.p.horizon: must be between 1 and 500",
        "predictors.p.quantiles: 1.5 is not strictly between 0 and 1",
        "steps[1] (out).predictor: unknown predictor \"q\" (declared: p)",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

#[test]
fn bad_rows_are_reported_and_missing_future_prices_keep_the_last_good_version() {
    let home = Home::new();
    oj(&home, &["2"]);
    // Two bad rows: a value that is not a number, a date that is not a date.
    let mut sales = std::fs::read_to_string(home.path().join("data/sales.csv")).unwrap();
    sales.push_str("2_1,1992-08-13,lots\n2_1,someday,5\n");
    home.write("data/sales.csv", sales);
    let predictors = r#"
  demand:
    algorithm: ets
    horizon: 8
"#;
    let steps = r#"
  - id: train
    type: forecast_train
    depends_on: [import_sales, import_prices]
    predictor: demand
  - id: forecast
    type: forecast
    depends_on: [train]
    predictor: demand
    output: out/
"#;
    // The pipeline tolerates a few bad rows; the report names them.
    let file = home.write(
        "fc.yaml",
        pipeline(predictors, steps).replace(
            "rename: {date: timestamp, units: target_value}",
            "rename: {date: timestamp, units: target_value}\n    max_rejected_fraction: 0.1",
        ),
    );
    let run = ok(home.cmd().arg("run").arg(&file));
    assert!(run.stdout.contains("2 rejected"), "{}", run.stdout);
    let rejected = std::fs::read_to_string(
        home.warehouse()
            .join("datasets/oj/target_time_series/v1/rejected.csv"),
    )
    .unwrap();
    assert!(
        rejected.contains("target_value") && rejected.contains("not a number"),
        "{rejected}"
    );
    assert!(
        rejected.contains("timestamp") && rejected.contains("someday"),
        "{rejected}"
    );
    assert!(home.path().join("out/_SUCCESS").exists());

    // Prices that stop at the last sale cannot cover the horizon: training
    // fails naming an item, v1 stays the active version and its export stays.
    let prices = std::fs::read_to_string(home.path().join("data/prices.csv")).unwrap();
    let cut: String = prices
        .lines()
        .filter(|l| {
            !l.contains(",1992-08-13,")
                && !l.contains(",1992-08-2")
                && !l.contains(",1992-09")
                && !l.contains(",1992-10")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    home.write("data/prices.csv", cut);
    let file = home.write(
        "fc.yaml",
        pipeline(&predictors.replace("ets", "global"), steps),
    );
    let r = fails(home.cmd().arg("run").arg(&file));
    assert!(
        r.all().contains("must cover the forecast horizon") && r.all().contains("future_fill"),
        "{}",
        r.all()
    );
    let m = ok(home.cmd().args(["forecast", "metrics", "demand"]));
    assert!(m.stdout.starts_with("demand v1"), "{}", m.stdout);
    assert!(home.path().join("out/_SUCCESS").exists());
}

#[test]
fn future_dated_rows_warn_in_the_target_and_feed_the_forecast_as_related_prices() {
    use chrono::{Datelike, Duration, Utc};
    // Weekly demand that follows the price, ending last week; the prices
    // run 4 weeks past today (planned prices), and one target row is dated
    // 10 weeks ahead (a mistake).
    let today = Utc::now().date_naive();
    let monday = today - Duration::days(today.weekday().num_days_from_monday() as i64);
    let last = monday - Duration::weeks(1);
    let weeks = 80;
    let price = |item: usize, w: i64| -> f64 {
        if (w + item as i64).rem_euclid(3) == 0 {
            0.5
        } else {
            1.0
        }
    };
    let mut sales = String::from("item_id,date,units\n");
    let mut prices = String::from("item_id,date,price\n");
    for item in 0..6 {
        for w in -(weeks as i64)..=4 {
            let date = last + Duration::weeks(w + 1);
            let p = price(item, w);
            if w < 0 {
                let units = 100.0 + 10.0 * item as f64 - 80.0 * p + (w.rem_euclid(2)) as f64;
                sales.push_str(&format!("i{item},{date},{units}\n"));
            }
            prices.push_str(&format!("i{item},{date},{p}\n"));
        }
    }
    sales.push_str(&format!("i0,{},55\n", last + Duration::weeks(10)));
    let home = Home::new();
    home.write("data/sales.csv", sales);
    home.write("data/prices.csv", prices);
    let file = home.write(
        "fc.yaml",
        r#"
name: future
dataset_group: future
datasets:
  target_time_series:
    frequency: W
  related_time_series:
    schema:
      fields:
        - {name: item_id, type: string}
        - {name: timestamp, type: long}
        - {name: price, type: double}
predictors:
  demand:
    algorithm: global
    horizon: 4
steps:
  - id: import_sales
    type: import
    dataset: target_time_series
    source: data/sales.csv
    rename: {date: timestamp, units: target_value}
  - id: import_prices
    type: import
    dataset: related_time_series
    source: data/prices.csv
    rename: {date: timestamp}
  - id: train
    type: forecast_train
    depends_on: [import_sales, import_prices]
    predictor: demand
  - id: forecast
    type: forecast
    depends_on: [train]
    predictor: demand
    output: out/
"#,
    );
    let run = ok(home.cmd().arg("run").arg(&file));
    // The target's future row is a warning in the step's summary line,
    // though it is far under max_rejected_fraction.
    assert!(
        run.stdout
            .contains("WARNING: 1 row(s) dated in the future rejected; the series end before them"),
        "{}",
        run.stdout
    );
    // The related series' future rows are accepted.
    let prices_line = run
        .stdout
        .lines()
        .find(|l| l.contains("import_prices"))
        .unwrap_or_default()
        .to_string();
    assert!(
        prices_line.contains("0 rejected") && !prices_line.contains("WARNING"),
        "{}",
        run.stdout
    );
    let logs = ok(home.cmd().args(["runs", "show", "1", "--logs"]));
    assert!(
        logs.stdout.contains("WARNING: Dated in the future:"),
        "{}",
        logs.stdout
    );
    // ...and used: the forecast follows the planned prices, higher in the
    // weeks of the low price.
    let rows = csv_rows(&home.path().join("out/forecast-00000.csv"));
    assert_eq!(rows.len(), 6 * 4);
    let mut agree = 0;
    for item in 0..6 {
        let p50: Vec<f64> = rows
            .iter()
            .filter(|r| r["item_id"] == format!("i{item}"))
            .map(|r| num(r, "p50"))
            .collect();
        let low: Vec<usize> = (0..4).filter(|w| (w + item) % 3 == 0).collect();
        let high: Vec<usize> = (0..4).filter(|w| (w + item) % 3 != 0).collect();
        let mean = |ws: &[usize]| ws.iter().map(|w| p50[*w]).sum::<f64>() / ws.len() as f64;
        if mean(&low) > mean(&high) + 10.0 {
            agree += 1;
        }
    }
    assert!(
        agree >= 5,
        "the forecast follows future prices for {agree} of 6 items"
    );
}

#[test]
fn a_series_too_short_for_a_candidate_falls_back_visibly() {
    // Four long weekly series and one that starts 10 weeks before the end:
    // with a horizon of 8 it has 2 weeks of history before the backtest
    // window, too few for ETS, which falls back to seasonal naive there.
    let home = Home::new();
    let mut sales = String::from("item_id,date,units\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    for item in 0..5 {
        let first = if item == 4 { 30 } else { 0 };
        for w in first..40 {
            let date = start + chrono::Duration::weeks(w);
            sales.push_str(&format!("s{item},{date},{}\n", 20 + item + (w % 4)));
        }
    }
    home.write("data/sales.csv", sales);
    let file = home.write(
        "fc.yaml",
        r#"
name: short
dataset_group: short
datasets:
  target_time_series:
    frequency: 1W
predictors:
  p:
    algorithm: auto
    candidates: [seasonal_naive, ets]
    horizon: 8
steps:
  - id: import_sales
    type: import
    dataset: target_time_series
    source: data/sales.csv
    rename: {date: timestamp, units: target_value}
  - id: train
    type: forecast_train
    depends_on: [import_sales]
    predictor: p
"#,
    );
    ok(home.cmd().arg("run").arg(&file));
    let m = ok(home.cmd().args(["forecast", "metrics", "p"])).stdout;
    assert!(m.contains("FELL BACK"), "{m}");
    let fell_back = |name: &str| -> String {
        let line = m
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{m}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        cells[cells.len() - 2].to_string()
    };
    assert_eq!(fell_back("ets"), "1", "{m}");
    assert_eq!(fell_back("seasonal_naive"), "0", "{m}");
    // Both are scored on all five series.
    assert!(
        m.lines()
            .filter(|l| l.starts_with("ets ") || l.starts_with("seasonal_naive "))
            .all(|l| l.contains(" 5 ")),
        "{m}"
    );
    let logs = ok(home.cmd().args(["runs", "show", "1", "--logs"])).stdout;
    assert!(
        logs.contains("(1 series too short for it forecast by seasonal_naive)"),
        "{logs}"
    );
}
