# GH Archive backfill: a Cloud Run Job running `ghstats gharchive` in the service's image, as
# the service's account, with its settings and secret. Cloud Run sets CLOUD_RUN_TASK_INDEX and
# CLOUD_RUN_TASK_COUNT in each task, and ghstats reads them as the shard I/N: task I takes
# every N-th hour counted from the Unix epoch, under a lock of its own, so the tasks never
# share an hour. The hourly Scheduler job (scheduler.tf) keeps up with new hours; this job
# fills a range of the past:
#
#   gcloud run jobs execute gharchive-backfill --region=REGION \
#     --args=--from,2025-01-01T00,--to,2025-12-31T23 --tasks=50
#
# A rerun skips the hours already ingested and retries the missing and failed ones.

locals {
  # A task stops between hours this long before its timeout, answers partial (exit status
  # 3), and Cloud Run retries it: the retry skips what the task ingested and takes the rest.
  gharchive_task_budget_minutes = var.gharchive_task_timeout_minutes - 10
}

resource "google_cloud_run_v2_job" "gharchive_backfill" {
  count               = var.gharchive_enabled ? 1 : 0
  project             = var.project_id
  name                = var.gharchive_job_name
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    task_count  = var.gharchive_task_count
    parallelism = var.gharchive_parallelism

    template {
      service_account = google_service_account.runtime.email
      timeout         = "${var.gharchive_task_timeout_minutes * 60}s"
      # A task that exits non-zero (3: partial at its budget; 1: an hour failed) runs again
      # and continues where it stopped.
      max_retries = var.gharchive_task_max_retries

      containers {
        image   = var.image
        command = ["/usr/local/bin/ghstats", "gharchive"]
        # Empty: every hour since the last one ingested. `gcloud run jobs execute --args=…`
        # replaces these for one execution.
        args = var.gharchive_backfill_args

        resources {
          limits = {
            cpu    = "1"
            memory = "1Gi"
          }
        }

        dynamic "env" {
          for_each = local.runtime_env
          content {
            name  = env.key
            value = env.value
          }
        }
        env {
          name  = "RUN_BUDGET"
          value = "${local.gharchive_task_budget_minutes}m"
        }
        env {
          name = local.github_secret.name
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.github_token.secret_id
              version = "latest"
            }
          }
        }
      }
    }
  }

  lifecycle {
    # Cloud Build deploys new images to the service; update the job's with
    # `gcloud run jobs update gharchive-backfill --image=…` (DEPLOYMENT.md).
    ignore_changes = [
      template[0].template[0].containers[0].image,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.runtime_reads_token,
  ]
}
