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
    // Every table of the code, GH Archive's and the stars' included, with the loader's own
    // schema, partitioning and clustering.
    let tables = committed["tables"].as_object().unwrap();
    let defs: Vec<_> = ghstats::tables::every().collect();
    assert_eq!(tables.len(), defs.len());
    for t in defs {
        let tf = &tables[t.name];
        assert_eq!(tf["schema"], ghstats::warehouse::bigquery::schema_json(t));
        assert_eq!(tf["partition_field"].as_str(), t.partition);
        assert_eq!(
            tf["partition_type"].as_str(),
            Some(t.partition_unit.bigquery()),
            "{}",
            t.name
        );
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
        "type  = each.value.partition_type",
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
        // `name  = "GITHUB_ORG"` in env blocks; `{ GITHUB_APP_ID = … }`,
        // `name = "GITHUB_TOKEN"` and `STORAGE_URL = …` (runtime_env) in locals.
        let map_key = line
            .split_once('=')
            .map(|(k, _)| k.trim().to_string())
            .filter(|k| k.len() > 1);
        let candidates = line
            .strip_prefix("name")
            .and_then(|r| r.trim_start().strip_prefix('='))
            .map(|r| r.trim().trim_matches('"').to_string())
            .into_iter()
            .chain(map_key)
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
        "GHARCHIVE_PAYLOAD",
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

fn terraform_file(name: &str) -> String {
    std::fs::read_to_string(root().join("terraform").join(name)).unwrap()
}

/// The text of the block that starts at the first line beginning with `header` (trimmed), up
/// to its closing brace.
fn block<'a>(text: &'a str, header: &str) -> &'a str {
    let start = text
        .lines()
        .map(|l| (l.trim_start(), l))
        .find(|(t, _)| t.starts_with(header))
        .map(|(_, l)| l.as_ptr() as usize - text.as_ptr() as usize)
        .unwrap_or_else(|| panic!("no block {header:?}"));
    let mut depth = 0;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[start..=start + i];
                }
            }
            _ => {}
        }
    }
    panic!("block {header:?} is not closed")
}

/// `name = value` inside `text` (the first one), spaces around `=` ignored.
fn setting<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// A variable's default, as written in variables.tf.
fn default_of(variable: &str) -> String {
    let vars = terraform_file("variables.tf");
    let b = block(&vars, &format!("variable \"{variable}\""));
    setting(b, "default")
        .unwrap_or_else(|| panic!("{variable} has no default"))
        .to_string()
}

/// Every `var.X` the Terraform uses is declared in variables.tf with a description.
#[test]
fn every_variable_used_is_declared_with_a_description() {
    let vars = terraform_file("variables.tf");
    let mut used = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root().join("terraform")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "tf") {
            let text = std::fs::read_to_string(&p).unwrap();
            for (i, _) in text.match_indices("var.") {
                let name: String = text[i + 4..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                used.insert(name);
            }
        }
    }
    assert!(used.contains("gharchive_task_count"), "{used:?}");
    for name in used {
        let b = block(&vars, &format!("variable \"{name}\""));
        assert!(
            setting(b, "description").is_some_and(|d| d.len() > 20),
            "variable {name} has no description"
        );
    }
}

/// The hourly GH Archive call: Cloud Scheduler at minute 20 (GH Archive publishes an hour some
/// minutes after it ends), POST /gharchive with an empty JSON body (every hour since the last
/// one ingested), with the invoker's OIDC token like the other scheduled calls.
#[test]
fn gh_archive_is_scheduled_hourly_at_minute_20_with_oidc() {
    let scheduler = terraform_file("scheduler.tf");
    let entry = block(&scheduler, "gharchive = {");
    assert_eq!(setting(entry, "path"), Some("\"/gharchive\""));
    assert_eq!(setting(entry, "schedule"), Some("var.gharchive_schedule"));
    assert_eq!(setting(entry, "body"), Some("jsonencode({})"));
    assert_eq!(default_of("gharchive_schedule"), "\"20 * * * *\"");
    // Only the switch leaves it out.
    let scheduled = block(&scheduler, "scheduled = {");
    assert!(
        scheduled.contains(r#"if name != "gharchive" || var.gharchive_enabled"#),
        "{scheduled}"
    );
    assert_eq!(default_of("gharchive_enabled"), "true");
    // The one scheduler resource calls each entry's path, with OIDC.
    let job = block(
        &scheduler,
        r#"resource "google_cloud_scheduler_job" "jobs""#,
    );
    assert_eq!(setting(job, "for_each"), Some("local.scheduled"));
    assert_eq!(
        setting(job, "uri"),
        Some(r#""${google_cloud_run_v2_service.ghstats.uri}${each.value.path}""#)
    );
    assert_eq!(setting(job, "body"), Some("base64encode(each.value.body)"));
    assert_eq!(setting(job, "http_method"), Some("\"POST\""));
    let oidc = block(job, "oidc_token {");
    assert_eq!(
        setting(oidc, "service_account_email"),
        Some("google_service_account.invoker.email")
    );
    assert_eq!(setting(oidc, "audience"), Some("local.audience"));
}

/// The commits call: Cloud Scheduler daily by default (the schedule a variable), POST /commits
/// with the repositories of `commits_repos`, or else the organization (`commits_org`, by
/// default the collected one), with the invoker's OIDC token like every scheduled call.
#[test]
fn commits_are_scheduled_daily_with_the_repositories_or_the_organization() {
    let scheduler = terraform_file("scheduler.tf");
    let entry = block(&scheduler, "commits = {");
    assert_eq!(setting(entry, "path"), Some("\"/commits\""));
    assert_eq!(setting(entry, "schedule"), Some("var.commits_schedule"));
    assert_eq!(
        setting(entry, "body"),
        Some("length(var.commits_repos) > 0 ? jsonencode({ repos = var.commits_repos }) : jsonencode({ org = coalesce(var.commits_org, var.github_org) })")
    );
    // Once a day, at a fixed minute and hour.
    let schedule = default_of("commits_schedule");
    let fields: Vec<&str> = schedule.trim_matches('"').split(' ').collect();
    assert_eq!(fields.len(), 5, "{schedule}");
    assert!(fields[0].parse::<u8>().is_ok() && fields[1].parse::<u8>().is_ok());
    assert_eq!(&fields[2..], ["*", "*", "*"], "{schedule}");
    assert_eq!(default_of("commits_repos"), "[]");
    assert_eq!(default_of("commits_org"), "null");
    assert_eq!(default_of("commits_enabled"), "true");
    let switched = block(&scheduler, "scheduled_switched = {");
    assert!(
        switched.contains(r#"if name != "commits" || var.commits_enabled"#),
        "{switched}"
    );
    assert!(block(&scheduler, "scheduled = {").contains("local.scheduled_switched"));
}

/// The backfill's Cloud Run Job: the service's image, account, settings and secret, running
/// `ghstats gharchive` with the range from a variable, as many tasks as a variable says, some
/// at once, each under its own timeout with a run budget inside it. Cloud Run sets
/// CLOUD_RUN_TASK_INDEX / CLOUD_RUN_TASK_COUNT itself, and ghstats reads them as the shard.
#[test]
fn the_gh_archive_backfill_job_runs_ghstats_gharchive_in_sharded_tasks() {
    let tf = terraform_file("gharchive.tf");
    let job = block(
        &tf,
        r#"resource "google_cloud_run_v2_job" "gharchive_backfill""#,
    );
    assert_eq!(setting(job, "name"), Some("var.gharchive_job_name"));
    assert_eq!(default_of("gharchive_job_name"), "\"gharchive-backfill\"");
    assert_eq!(setting(job, "count"), Some("var.gharchive_enabled ? 1 : 0"));
    assert_eq!(setting(job, "task_count"), Some("var.gharchive_task_count"));
    assert_eq!(
        setting(job, "parallelism"),
        Some("var.gharchive_parallelism")
    );
    assert!(default_of("gharchive_task_count").parse::<u32>().unwrap() > 1);
    assert_eq!(
        setting(job, "timeout"),
        Some(r#""${var.gharchive_task_timeout_minutes * 60}s""#)
    );
    // The budget ends before the timeout, so a task stops between hours and is retried.
    assert_eq!(
        setting(&tf, "gharchive_task_budget_minutes"),
        Some("var.gharchive_task_timeout_minutes - 10")
    );
    let budget = block(job, "env {");
    assert_eq!(setting(budget, "name"), Some("\"RUN_BUDGET\""));
    assert!(setting(job, "max_retries").is_some());

    // The service's image, account, settings and secret.
    let run = terraform_file("run.tf");
    let service = block(&run, r#"resource "google_cloud_run_v2_service" "ghstats""#);
    for (name, value) in [
        ("image", "var.image"),
        ("service_account", "google_service_account.runtime.email"),
    ] {
        assert_eq!(setting(job, name), Some(value), "job {name}");
        assert_eq!(setting(service, name), Some(value), "service {name}");
    }
    for shared in [
        "for_each = local.runtime_env",
        "secret  = google_secret_manager_secret.github_token.secret_id",
        "name = local.github_secret.name",
    ] {
        assert!(job.contains(shared), "the job lacks {shared:?}");
        assert!(service.contains(shared), "the service lacks {shared:?}");
    }

    // `ghstats gharchive` with the range from a variable, in the image's binary.
    assert_eq!(
        setting(job, "command"),
        Some(r#"["/usr/local/bin/ghstats", "gharchive"]"#)
    );
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("/usr/local/bin/ghstats"));
    assert_eq!(setting(job, "args"), Some("var.gharchive_backfill_args"));
    assert_eq!(default_of("gharchive_backfill_args"), "[]");

    // The shard comes from Cloud Run, never from the job's settings.
    let main = terraform_file("main.tf");
    for settings in [job, block(&main, "runtime_env = merge({")] {
        for line in settings
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
        {
            assert!(!line.contains("CLOUD_RUN_TASK_"), "{line}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ghstats"))
        .args(["gharchive", "--help"])
        .env_clear()
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("CLOUD_RUN_TASK_INDEX") && help.contains("CLOUD_RUN_TASK_COUNT"),
        "{help}"
    );
}
