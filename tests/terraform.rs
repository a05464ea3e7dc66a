//! The BigQuery tables Terraform creates come from the code's one table definition:
//! `terraform/bigquery_tables.json` must be what `ghstats bigquery-schema` prints, and the
//! Terraform must build every table from it, partitioned, clustered and protected.

use std::process::Command;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn terraform_tables_match_the_code() {
    let out = Command::new(env!("CARGO_BIN_EXE_ghstats"))
        .arg("bigquery-schema")
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("terraform/bigquery_tables.json")).unwrap(),
    )
    .unwrap();
    assert!(
        printed == committed,
        "terraform/bigquery_tables.json has drifted from the table definition: run\n  \
         cargo run -- bigquery-schema > terraform/bigquery_tables.json"
    );
    // Every table of the code, GH Archive's included, with the loader's own schema,
    // partitioning and clustering.
    let tables = committed["tables"].as_object().unwrap();
    let defs: Vec<_> = ghstats::tables::ALL
        .iter()
        .chain(ghstats::tables::GHARCHIVE)
        .collect();
    assert_eq!(tables.len(), defs.len());
    for t in defs {
        let tf = &tables[t.name];
        assert_eq!(tf["schema"], ghstats::warehouse::bigquery::schema_json(t));
        assert_eq!(tf["partition_field"].as_str(), t.partition);
        let clustering: Vec<&str> = tf["clustering"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(clustering, t.cluster);
    }
}

#[test]
fn terraform_builds_every_table_from_the_generated_file() {
    let main = std::fs::read_to_string(root().join("terraform/main.tf")).unwrap();
    assert!(main.contains(r#"jsondecode(file("${path.module}/bigquery_tables.json")).tables"#));
    let bq = std::fs::read_to_string(root().join("terraform/bigquery.tf")).unwrap();
    for needle in [
        "for_each            = local.tables",
        "schema              = jsonencode(each.value.schema)",
        "clustering          = each.value.clustering",
        "field = time_partitioning.value",
        "deletion_protection = var.deletion_protection",
    ] {
        assert!(
            bq.contains(needle),
            "terraform/bigquery.tf lacks {needle:?}"
        );
    }
}

/// Every environment variable the Terraform sets on the service is one `ghstats serve` reads
/// (a misspelt name would be ignored silently in production).
#[test]
fn terraform_sets_only_settings_ghstats_reads() {
    let mut tf = String::new();
    for entry in std::fs::read_dir(root().join("terraform")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "tf") {
            tf.push_str(&std::fs::read_to_string(p).unwrap());
        }
    }
    let mut names = Vec::new();
    for line in tf.lines() {
        let line = line.trim();
        // `name  = "GITHUB_ORG"` in env blocks; `{ GITHUB_APP_ID = … }` and
        // `name = "GITHUB_TOKEN"` in locals.
        let candidates = line
            .strip_prefix("name")
            .and_then(|r| r.trim_start().strip_prefix('='))
            .map(|r| r.trim().trim_matches('"').to_string())
            .into_iter()
            .chain(
                line.split(['{', ' '])
                    .filter(|w| w.starts_with("GITHUB_APP_"))
                    .map(str::to_string),
            );
        for c in candidates {
            if !c.is_empty() && c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_') {
                names.push(c);
            }
        }
    }
    for expected in [
        "GITHUB_ORG",
        "STORAGE_URL",
        "WAREHOUSE_URL",
        "RUN_BUDGET",
        "AUTH_MODE",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} is not set: {names:?}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ghstats"))
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for name in &names {
        // GOOGLE_CLOUD_PROJECT is read for the trace field of logs, not a flag.
        if name == "GOOGLE_CLOUD_PROJECT" {
            continue;
        }
        assert!(
            help.contains(&format!("[env: {name}")),
            "terraform sets {name}, which ghstats serve does not read"
        );
    }
}

/// Asynchronous runs (`Prefer: respond-async`) go on after their 202: the Cloud Run service
/// must keep its CPU allocated between requests, or they crawl.
#[test]
fn the_service_keeps_its_cpu_for_runs_that_outlive_their_request() {
    let run = std::fs::read_to_string(root().join("terraform/run.tf")).unwrap();
    let settings: Vec<&str> = run
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("cpu_idle"))
        .collect();
    assert_eq!(settings.len(), 1, "one cpu_idle setting: {settings:?}");
    let value = settings[0].split('=').nth(1).map(str::trim);
    assert_eq!(value, Some("false"), "{}", settings[0]);
}
