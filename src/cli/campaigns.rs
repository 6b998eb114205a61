//! `campaigns ...`, `recommend` and `segment`.

use super::print::{table, when};
use super::{CampaignsCommand, RecommendArgs, SegmentArgs};
use crate::config::Env;
use crate::ops::campaigns;
use crate::outln;
use crate::recipes::SegmentQuery;

pub async fn campaigns(env: &Env, c: CampaignsCommand) -> anyhow::Result<i32> {
    match c {
        CampaignsCommand::List => {
            let list = campaigns::list(env).await?;
            table(
                &[
                    "CAMPAIGN",
                    "DATASET GROUP",
                    "SOLUTION",
                    "VERSION",
                    "PREVIOUS",
                    "UPDATED",
                ],
                list.into_iter()
                    .map(|c| {
                        vec![
                            c.name,
                            c.dataset_group,
                            c.solution,
                            format!("v{}", c.solution_version),
                            c.previous_version
                                .map(|v| format!("v{v}"))
                                .unwrap_or_default(),
                            when(c.updated_at),
                        ]
                    })
                    .collect(),
            );
        }
        CampaignsCommand::Show { campaign } => {
            let d = campaigns::show(env, &campaign).await?;
            let c = &d.campaign;
            outln!(
                "campaign {} (dataset group {}) serves {} v{}",
                c.name,
                c.dataset_group,
                c.solution,
                c.solution_version
            );
            outln!("config: {}", c.config);
            outln!(
                "event tracker (trackingId for PutEvents): {}",
                d.tracking_id
            );
            outln!("deployments, newest first:");
            for dep in &d.deployments {
                let run = dep
                    .run_id
                    .map(|r| format!(" by run {r}"))
                    .unwrap_or_default();
                outln!(
                    "  {} {} v{}{run}",
                    when(dep.deployed_at),
                    dep.solution,
                    dep.solution_version
                );
            }
        }
        CampaignsCommand::Update { campaign, version } => {
            let m = campaigns::update(env, &campaign, version).await?;
            let c = &m.campaign;
            outln!(
                "campaign {} now serves {} v{} (was v{})",
                c.name,
                c.solution,
                c.solution_version,
                m.from
            );
        }
        CampaignsCommand::Rollback { campaign } => {
            let m = campaigns::rollback(env, &campaign).await?;
            let c = &m.campaign;
            outln!(
                "campaign {} rolled back to {} v{} (was v{})",
                c.name,
                c.solution,
                c.solution_version,
                m.from
            );
        }
    }
    Ok(0)
}

pub async fn recommend(env: &Env, args: RecommendArgs) -> anyhow::Result<i32> {
    let ask = campaigns::RecommendAsk {
        user: args.user.clone(),
        item: args.item.clone(),
        num_results: args.num_results,
        filter: args.filter.clone(),
        filter_values: args.filter_values.iter().cloned().collect(),
        metadata: args.metadata.clone(),
    };
    let answer = campaigns::recommend(env, &args.campaign, &ask).await?;
    if args.json {
        let body = serde_json::json!({
            "itemList": answer.items,
            "recommendationId": format!("RID-{}", uuid::Uuid::new_v4()),
        });
        outln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(0);
    }
    outln!(
        "{} v{} for {}{}:",
        answer.solution,
        answer.version,
        match (&args.user, &args.item) {
            (Some(u), _) => format!("user {u}"),
            (None, Some(i)) => format!("item {i}"),
            (None, None) => unreachable!("clap requires --user or --item"),
        },
        args.filter
            .as_ref()
            .map(|f| format!(" (filter {f})"))
            .unwrap_or_default()
    );
    let mut header = vec!["RANK".to_string(), "ITEM".to_string(), "SCORE".to_string()];
    header.extend(args.metadata.iter().cloned());
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    table(
        &header,
        answer
            .items
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let mut row = vec![
                    (i + 1).to_string(),
                    r.item_id,
                    r.score.map(|s| format!("{s:.6}")).unwrap_or_default(),
                ];
                let meta = r.metadata.unwrap_or_default();
                row.extend(
                    args.metadata
                        .iter()
                        .map(|c| meta.get(c).cloned().unwrap_or_default()),
                );
                row
            })
            .collect(),
    );
    Ok(0)
}

pub async fn segment(env: &Env, args: SegmentArgs) -> anyhow::Result<i32> {
    let (query, input) = match (&args.item, &args.attributes) {
        (Some(i), _) => (SegmentQuery::Item(i), serde_json::json!({"itemId": i})),
        (None, Some(a)) => (
            SegmentQuery::Attributes(a),
            serde_json::json!({"itemAttributes": a}),
        ),
        (None, None) => unreachable!("clap requires --item or --attributes"),
    };
    let answer =
        campaigns::segment(env, &args.solution, args.version, &query, args.num_results).await?;
    if args.json {
        let ids: Vec<&str> = answer.items.iter().map(|(u, _)| u.as_str()).collect();
        outln!(
            "{}",
            serde_json::json!({"input": input, "output": {"recommendedUsers": ids}})
        );
    } else {
        outln!(
            "{} v{} ({}), users for {input}:",
            answer.solution,
            answer.version,
            answer.recipe
        );
        table(
            &["RANK", "USER", "SCORE"],
            answer
                .items
                .into_iter()
                .enumerate()
                .map(|(i, (u, s))| vec![(i + 1).to_string(), u, format!("{s:.6}")])
                .collect(),
        );
    }
    Ok(0)
}
