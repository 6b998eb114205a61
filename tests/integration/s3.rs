//! The same pipelines against a real S3 server (SeaweedFS on 127.0.0.1,
//! started by `scripts/test`). Objects are created and read back with the AWS
//! SDK, independently of the object_store client recflow uses.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

use crate::common::{Home, example, fails, ok, repo};

/// The endpoint of the test S3 server; the tests cannot pass without one.
fn endpoint() -> String {
    match (
        std::env::var("RECFLOW_TEST_S3"),
        std::env::var("AWS_ENDPOINT_URL"),
    ) {
        (Ok(_), Ok(url)) => url,
        _ => panic!(
            "the S3 tests need the test S3 server: run the suite with `scripts/test` \
             (it installs and starts SeaweedFS on 127.0.0.1 and sets AWS_ENDPOINT_URL)"
        ),
    }
}

pub(crate) async fn client() -> Client {
    let endpoint = endpoint();
    let http = aws_smithy_http_client::Builder::new().build_http();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .load()
        .await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

/// A fresh bucket for one test.
pub(crate) async fn bucket(client: &Client, test: &str) -> String {
    let name = format!("{test}-{}", uuid::Uuid::new_v4().simple())
        .to_lowercase()
        .replace('_', "-");
    let name = name[..name.len().min(63)].to_string();
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
    name
}

pub(crate) async fn put(client: &Client, bucket: &str, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

async fn get(client: &Client, bucket: &str, key: &str) -> String {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
    String::from_utf8(out.body.collect().await.unwrap().to_vec()).unwrap()
}

async fn keys(client: &Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

/// A pipeline over MovieLens ratings: import, train, deploy, export.
fn ratings_pipeline(source: &str, input: &str, output: &str) -> String {
    format!(
        r#"
name: s3-nightly
dataset_group: movielens
datasets:
  interactions:
    schema_file: {schema}
solutions:
  popular: {{recipe: popularity-count}}
campaigns:
  movies: {{solution: popular}}
steps:
  - id: load
    type: import
    dataset: interactions
    source: {source}
    format: csv
    csv: {{delimiter: "\t", header: false, columns: [USER_ID, ITEM_ID, EVENT_VALUE, TIMESTAMP]}}
  - {{id: train, type: train, solution: popular, depends_on: [load]}}
  - {{id: deploy, type: deploy, campaign: movies, depends_on: [train]}}
  - id: export
    type: batch_inference
    depends_on: [deploy]
    campaign: movies
    input: {input}
    output: {output}
    num_results: 7
"#,
        schema = example("schemas/movielens-interactions.json"),
    )
}

#[tokio::test]
async fn a_pipeline_reads_its_data_from_s3_and_exports_to_s3() {
    let s3 = client().await;
    let bucket = bucket(&s3, "nightly").await;
    // The ratings split in two objects under a prefix, with a marker to skip.
    let ratings = std::fs::read_to_string(repo().join("examples/data/ml-100k/u.data")).unwrap();
    let lines: Vec<&str> = ratings.lines().collect();
    let (a, b) = lines.split_at(60_000);
    put(
        &s3,
        &bucket,
        "raw/ratings/part-0.tsv",
        (a.join("\n") + "\n").into_bytes(),
    )
    .await;
    put(
        &s3,
        &bucket,
        "raw/ratings/part-1.tsv",
        (b.join("\n") + "\n").into_bytes(),
    )
    .await;
    put(&s3, &bucket, "raw/ratings/_SUCCESS", Vec::new()).await;
    let users = std::fs::read(repo().join("examples/data/batch/users.jsonl")).unwrap();
    put(&s3, &bucket, "batch/in/users.jsonl", users).await;

    let home = Home::new();
    let pipeline = home.write(
        "s3.yaml",
        ratings_pipeline(
            &format!("s3://{bucket}/raw/ratings/"),
            &format!("s3://{bucket}/batch/in/users.jsonl"),
            &format!("s3://{bucket}/batch/out/"),
        ),
    );
    let r = ok(home.cmd().arg("run").arg(&pipeline));
    assert!(
        r.stdout.contains("100,000 rows, 0 rejected"),
        "{}",
        r.stdout
    );

    let mut listed = keys(&s3, &bucket, "batch/out/").await;
    listed.sort();
    assert_eq!(
        listed,
        [
            "batch/out/_SUCCESS",
            "batch/out/_manifest.json",
            "batch/out/users.jsonl.out"
        ]
    );

    // The same pipeline on local files gives the same export, line by line.
    let local = Home::new();
    let local_out = local.path().join("out");
    let local_pipeline = local.write(
        "local.yaml",
        ratings_pipeline(
            &example("data/ml-100k/u.data"),
            &example("data/batch/users.jsonl"),
            &format!("{}/", local_out.display()),
        ),
    );
    ok(local.cmd().arg("run").arg(&local_pipeline));
    let from_s3 = get(&s3, &bucket, "batch/out/users.jsonl.out").await;
    let from_disk = std::fs::read_to_string(local_out.join("users.jsonl.out")).unwrap();
    let inputs = std::fs::read_to_string(repo().join("examples/data/batch/users.jsonl")).unwrap();
    assert_eq!(from_s3.lines().count(), inputs.lines().count());
    for ((s3_line, disk_line), input) in from_s3.lines().zip(from_disk.lines()).zip(inputs.lines())
    {
        let s3_json: Value = serde_json::from_str(s3_line).unwrap();
        let disk_json: Value = serde_json::from_str(disk_line).unwrap();
        assert_eq!(
            s3_json["input"],
            serde_json::from_str::<Value>(input).unwrap()
        );
        assert_eq!(s3_json["output"], disk_json["output"]);
        assert_eq!(s3_json["error"], Value::Null);
    }
    let manifest: Value =
        serde_json::from_str(&get(&s3, &bucket, "batch/out/_manifest.json").await).unwrap();
    assert_eq!(manifest["counts"]["lines_out"], 6);
}

#[tokio::test]
async fn the_warehouse_can_live_in_s3() {
    let s3 = client().await;
    let bucket = bucket(&s3, "warehouse").await;
    let home = Home::new();
    let r = ok(home
        .cmd()
        .env("RECFLOW_WAREHOUSE", format!("s3://{bucket}/recflow/"))
        .arg("run")
        .arg(repo().join("pipelines/quickstart.yaml")));
    assert!(
        r.stdout
            .contains(&format!("warehouse s3://{bucket}/recflow")),
        "{}",
        r.stdout
    );
    let listed = keys(&s3, &bucket, "recflow/").await;
    for key in [
        "recflow/datasets/movielens/interactions/v1/manifest.json",
        "recflow/datasets/movielens/interactions/v1/part-00000.parquet",
        "recflow/models/movie-recs/v1/model.rfm",
        "recflow/models/movie-recs/v1/manifest.json",
        "recflow/exports/quickstart/export/run-1/_SUCCESS",
    ] {
        assert!(listed.iter().any(|k| k == key), "{key} not in {listed:?}");
    }
    assert!(
        !home.warehouse().exists(),
        "nothing written to the local warehouse"
    );
    // The model is loaded back from S3.
    let rec = ok(home
        .cmd()
        .env("RECFLOW_WAREHOUSE", format!("s3://{bucket}/recflow/"))
        .args([
            "recommend",
            "--campaign",
            "movies",
            "--user",
            "a-new-user",
            "--num-results",
            "3",
        ]));
    assert!(
        rec.stdout.lines().nth(2).is_some_and(|l| l.contains("50")),
        "{}",
        rec.stdout
    );
}

#[tokio::test]
async fn an_unknown_bucket_is_named() {
    let _ = endpoint();
    let home = Home::new();
    let source = "s3://no-such-bucket-recflow/ratings.tsv";
    let pipeline = home.write(
        "p.yaml",
        ratings_pipeline(
            source,
            "s3://no-such-bucket-recflow/in.jsonl",
            "s3://x/out/",
        ),
    );
    let r = fails(home.cmd().arg("run").arg(&pipeline));
    assert!(
        r.stdout
            .contains(&format!("{source}: read failed: the bucket does not exist")),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn wrong_s3_credentials_are_named() {
    let s3 = client().await;
    let bucket = bucket(&s3, "creds").await;
    put(
        &s3,
        &bucket,
        "ratings.tsv",
        b"1\t2\t3\t881250949\n".to_vec(),
    )
    .await;
    let home = Home::new();
    let source = format!("s3://{bucket}/ratings.tsv");
    let pipeline = home.write("p.yaml", ratings_pipeline(&source, "in.jsonl", "out/"));
    let r = fails(
        home.cmd()
            .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
            .arg("run")
            .arg(&pipeline),
    );
    assert!(
        r.stdout.contains(&format!("{source}: read failed: the S3 credentials were refused; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn validate_check_sources_names_s3_sources_that_are_not_there() {
    let s3 = client().await;
    let bucket = bucket(&s3, "check-sources").await;
    put(
        &s3,
        &bucket,
        "raw/ratings/part-0.tsv",
        b"1\t2\t3\t1000000000\n".to_vec(),
    )
    .await;
    put(
        &s3,
        &bucket,
        "batch/users.jsonl",
        b"{\"userId\": \"1\"}\n".to_vec(),
    )
    .await;
    let home = Home::new();
    let good = home.write(
        "good.yaml",
        ratings_pipeline(
            &format!("s3://{bucket}/raw/ratings/"),
            &format!("s3://{bucket}/batch/users.jsonl"),
            &format!("s3://{bucket}/out/"),
        ),
    );
    ok(home.cmd().args(["validate", "--check-sources"]).arg(&good));

    let bad = home.write(
        "bad.yaml",
        ratings_pipeline(
            &format!("s3://{bucket}/raw/nothing/"),
            &format!("s3://{bucket}/batch/missing.jsonl"),
            &format!("s3://{bucket}/out/"),
        ),
    );
    // Without the flag, storage is not asked.
    ok(home.cmd().arg("validate").arg(&bad));
    let r = fails(home.cmd().args(["validate", "--check-sources"]).arg(&bad));
    for expected in [
        format!(
            "steps[0] (load).source: s3://{bucket}/raw/nothing/: no objects under this prefix (line 15, column 13)"
        ),
        format!(
            "steps[3] (export).input: s3://{bucket}/batch/missing.jsonl: no such object (line 24, column 12)"
        ),
    ] {
        assert!(r.stdout.contains(&expected), "{expected}\n{}", r.stdout);
    }

    let gone = home.write(
        "gone.yaml",
        ratings_pipeline(
            "s3://recflow-no-such-bucket/raw/",
            &format!("s3://{bucket}/batch/users.jsonl"),
            &format!("s3://{bucket}/out/"),
        ),
    );
    let r = fails(home.cmd().args(["validate", "--check-sources"]).arg(&gone));
    assert!(
        r.stdout.contains("steps[0] (load).source: ")
            && r.stdout.contains("the bucket does not exist"),
        "{}",
        r.stdout
    );
}
