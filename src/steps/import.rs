//! The `import` step: reads a source into a new version of a dataset.

use crate::dataset::import::{ImportJob, run_import};
use crate::group::Group;
use crate::schema::DatasetType;
use crate::spec::SpecProblem;
use crate::spec::unknown;
use crate::storage::StorageUrl;

use super::{StepContext, StepOutcome, thousands};

pub use crate::dataset::import::ImportSpec;

pub fn validate(spec: &ImportSpec, at: &str, group: &Group) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    let Some(schema) = group.schemas.get(&spec.dataset) else {
        if !group.spec.datasets.contains_key(&spec.dataset) {
            let declared: Vec<String> = group.spec.datasets.keys().map(|d| d.to_string()).collect();
            problems.push(unknown(
                &format!("{at}.dataset"),
                "dataset",
                spec.dataset.as_str(),
                declared.iter(),
            ));
        }
        return problems;
    };
    if let Err(e) = StorageUrl::parse(&spec.source, &group.base_dir) {
        problems.push(SpecProblem::new(format!("{at}.source"), e.to_string()));
    }
    if !(0.0..=1.0).contains(&spec.max_rejected_fraction) {
        problems.push(SpecProblem::new(
            format!("{at}.max_rejected_fraction"),
            "must be between 0 and 1",
        ));
    }
    for (name, c) in [
        ("delimiter", Some(spec.csv.delimiter)),
        ("quote", spec.csv.quote),
    ] {
        if c.is_some_and(|c| !c.is_ascii()) {
            problems.push(SpecProblem::new(
                format!("{at}.csv.{name}"),
                "must be one ASCII character",
            ));
        }
    }
    if !spec.csv.header && spec.csv.columns.is_none() {
        problems.push(SpecProblem::new(
            format!("{at}.csv.columns"),
            "required when `header: false`: name the file's columns in order",
        ));
    }
    if spec.sql.is_none() {
        // Without SQL the final column names are known here: check them.
        for (from, to) in &spec.rename {
            if schema.field(to).is_none() {
                problems.push(SpecProblem::new(
                    format!("{at}.rename.{from}"),
                    format!(
                        "{to:?} is not a field of the {} schema ({})",
                        spec.dataset,
                        schema.names().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if let Some(columns) = &spec.csv.columns {
            let renamed: Vec<&str> = columns
                .iter()
                .map(|c| spec.rename.get(c).unwrap_or(c).as_str())
                .collect();
            for f in schema.fields.iter().filter(|f| !f.nullable) {
                if !renamed.contains(&f.name.as_str()) {
                    problems.push(SpecProblem::new(
                        format!("{at}.csv.columns"),
                        format!(
                            "schema field {} is missing (columns: {})",
                            f.name,
                            renamed.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    problems
}

pub async fn run(spec: &ImportSpec, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
    let group = ctx.group;
    let schema = group
        .schemas
        .get(&spec.dataset)
        .expect("validated: the dataset is declared");
    ctx.log(format!(
        "Importing {} from {} ({} mode).",
        spec.dataset,
        spec.source,
        spec.mode.as_str()
    ));
    let report = run_import(
        ctx.env,
        ImportJob {
            spec,
            schema,
            dataset_group: group.name(),
            base_dir: &group.base_dir,
            run_id: Some(ctx.run_id),
            step_id: Some(ctx.step_id),
        },
    )
    .await?;
    let m = &report.manifest;
    ctx.log(format!(
        "Read {} source object(s), {} bytes; {} rows valid, {} rejected, {} filtered by sql.",
        m.sources.len(),
        report.bytes_read,
        m.imported_rows,
        m.rejected_rows,
        m.filtered_rows
    ));
    if !report.ignored_columns.is_empty() {
        ctx.log(format!(
            "Columns not in the schema, not imported: {}.",
            report.ignored_columns.join(", ")
        ));
    }
    for note in &report.notes {
        ctx.log(format!("Converted: {note}."));
    }
    for line in &report.rejected_preview {
        ctx.log(format!("Rejected: {}", line.trim()));
    }
    // Rows dated in the future are refused; say so loudly, whatever the
    // share of rejected rows: a target series silently loses its last
    // periods otherwise.
    let future_warning = (report.future_rows > 0).then(|| {
        let consequence = if spec.dataset == DatasetType::TargetTimeSeries {
            "; the series end before them (values known ahead, such as planned prices, \
             belong in the related_time_series, which accepts future rows)"
        } else {
            ""
        };
        format!(
            "{} row(s) dated in the future rejected{consequence}",
            thousands(report.future_rows)
        )
    });
    if let Some(w) = &future_warning {
        ctx.warn(w);
        for line in &report.future_preview {
            ctx.warn(format!("Dated in the future: {}", line.trim()));
        }
    }
    ctx.log(format!(
        "Published {} v{} at {}.",
        spec.dataset, report.version, report.location
    ));
    let mut summary = future_warning
        .map(|w| format!("WARNING: {w}; "))
        .unwrap_or_default();
    summary += &format!("{} rows", thousands(m.imported_rows));
    if m.rejected_rows > 0 {
        summary += &format!(
            ", {} rejected (see {}/rejected.csv)",
            thousands(m.rejected_rows),
            report.location
        );
    } else {
        summary += ", 0 rejected";
    }
    if m.filtered_rows > 0 {
        summary += &format!(", {} filtered by sql", thousands(m.filtered_rows));
    }
    if m.duplicate_rows > 0 {
        let how = if spec.dataset.key_field().is_some() {
            "replaced by id"
        } else {
            "exact duplicates dropped"
        };
        summary += &format!(", {} {how}", thousands(m.duplicate_rows));
    }
    summary += &format!(" → {}/{} v{}", group.name(), spec.dataset, report.version);
    if m.parent_version.is_some() {
        summary += &format!(" ({} rows in all)", thousands(m.rows));
    }
    let mut outputs = serde_json::Map::new();
    outputs.insert("dataset".into(), spec.dataset.as_str().into());
    outputs.insert("dataset_version".into(), report.version.into());
    outputs.insert("rows".into(), m.rows.into());
    outputs.insert("rejected_rows".into(), m.rejected_rows.into());
    outputs.insert("future_rows".into(), report.future_rows.into());
    Ok(StepOutcome { summary, outputs })
}
