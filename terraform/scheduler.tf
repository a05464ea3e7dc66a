locals {
  # Every scheduled call: the path, and the body as JSON (one type for every entry).
  scheduled_all = {
    # The hourly window, overlapping the last one.
    collect = {
      path        = "/collect"
      schedule    = var.collect_schedule
      description = "ghstats: collect the last ${var.collect_hours} hours (resuming an unfinished collection first)"
      body        = jsonencode({ hours = var.collect_hours })
    }
    # The daily sweep: /collect resumes any unfinished collection before its own window, and
    # its wider window catches what hourly runs missed. sweep_comments also collects again the
    # pull requests outside the window whose comments were edited in it (GitHub does not bump
    # a pull request's updatedAt for an edit): two REST listings per repository.
    sweep = {
      path        = "/collect"
      schedule    = var.sweep_schedule
      description = "ghstats: daily sweep, resume anything unfinished, collect the last ${var.sweep_hours} hours and PRs with comments edited in them"
      body        = jsonencode({ hours = var.sweep_hours, sweep_comments = true })
    }
    # GH Archive writes an hour's file some minutes after the hour ends, hence minute 20. An
    # empty body takes every hour since the last one ingested (hours a failed run left are
    # caught up) and asks again for missing hours for 7 days. It runs under its own lock,
    # beside /collect.
    gharchive = {
      path        = "/gharchive"
      schedule    = var.gharchive_schedule
      description = "ghstats: GH Archive, every hour since the last one ingested up to the newest published"
      body        = jsonencode({})
    }
    # Default-branch commits with per-file changes, read over git: each repository from its
    # last processed commit to its head. The repositories listed in commits_repos, or else every
    # repository of the organization (forks and archived ones skipped). It runs under its own
    # lock, beside /collect; a repository whose head has not moved costs one ref listing.
    commits = {
      path        = "/commits"
      schedule    = var.commits_schedule
      description = "ghstats: default-branch commits and their file changes, since each repository's last processed commit"
      body        = length(var.commits_repos) > 0 ? jsonencode({ repos = var.commits_repos }) : jsonencode({ org = coalesce(var.commits_org, var.github_org) })
    }
  }
  scheduled_switched = {
    for name, job in local.scheduled_all : name => job
    if name != "commits" || var.commits_enabled
  }
  scheduled = {
    for name, job in local.scheduled_switched : name => job
    if name != "gharchive" || var.gharchive_enabled
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
    # failure resumes the collection (or, for /gharchive, takes the hours not yet ingested).
    retry_count          = 2
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
    max_doublings        = 3
    max_retry_duration   = "0s"
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.ghstats.uri}${each.value.path}"
    body        = base64encode(each.value.body)
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
