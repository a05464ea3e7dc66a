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
    // Every table of the code, with the loader's own schema, partitioning and clustering.
    let tables = committed["tables"].as_object().unwrap();
    assert_eq!(tables.len(), ghstats::tables::ALL.len());
    for t in ghstats::tables::ALL {
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
