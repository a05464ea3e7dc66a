locals {
  scheduled = {
    # The hourly window, overlapping the last one.
    collect = {
      schedule    = var.collect_schedule
      description = "ghstats: collect the last ${var.collect_hours} hours (resuming an unfinished collection first)"
      body        = { hours = var.collect_hours }
    }
    # The daily sweep: /collect resumes any unfinished collection before its own window, and
    # its wider window catches what hourly runs missed. sweep_comments also collects again the
    # pull requests outside the window whose comments were edited in it (GitHub does not bump
    # a pull request's updatedAt for an edit): two REST listings per repository.
    sweep = {
      schedule    = var.sweep_schedule
      description = "ghstats: daily sweep, resume anything unfinished, collect the last ${var.sweep_hours} hours and PRs with comments edited in them"
      body        = { hours = var.sweep_hours, sweep_comments = true }
    }
  }
}

resource "google_cloud_scheduler_job" "jobs" {
  for_each    = local.scheduled
  project     = var.project_id
  region      = var.region
  name        = "${var.service_name}-${each.key}"
  description = each.value.description
  schedule    = each.value.schedule
  time_zone   = var.time_zone
  # The service answers within the run budget plus its final load.
  attempt_deadline = "${local.request_timeout_s}s"

  retry_config {
    # A retry while the first attempt still runs gets 409 and changes nothing; one after a
    # failure resumes the collection.
    retry_count          = 2
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
    max_doublings        = 3
    max_retry_duration   = "0s"
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.ghstats.uri}/collect"
    body        = base64encode(jsonencode(each.value.body))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = local.audience
    }
  }

  depends_on = [google_project_service.apis]
}
