resource "google_cloud_run_v2_service" "ghstats" {
  project             = var.project_id
  name                = var.service_name
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account = google_service_account.runtime.email
    # A run answers within its budget; the request may take the budget plus the final load.
    timeout = "${local.request_timeout_s}s"
    # One instance, so every request for the organization reaches the same process; a few
    # concurrent requests so /summary and /collections answer while a run goes. Overlapping
    # runs (a deploy's second revision, a manual curl) are stopped by the lease lock: 409.
    max_instance_request_concurrency = 8

    scaling {
      min_instance_count = 0
      max_instance_count = 1
    }

    containers {
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        # CPU stays allocated after a response: a run started with `Prefer: respond-async`
        # (or "wait": false) goes on in the background after its 202, and with the CPU
        # throttled between requests it would crawl. This bills the instance for its whole
        # lifetime (see DEPLOYMENT.md, "What it costs").
        cpu_idle          = false
        startup_cpu_boost = true
      }

      env {
        name  = "HOST"
        value = "0.0.0.0"
      }
      # GITHUB_ORG, STORAGE_URL, WAREHOUSE_URL and the rest the GH Archive job shares.
      dynamic "env" {
        for_each = local.runtime_env
        content {
          name  = env.key
          value = env.value
        }
      }
      env {
        name  = "RUN_BUDGET"
        value = "${var.run_budget_minutes}m"
      }
      env {
        name  = "MAX_WORKERS"
        value = tostring(var.max_workers)
      }
      env {
        name  = "AUTH_MODE"
        value = "oidc"
      }
      env {
        name  = "OIDC_AUDIENCE"
        value = local.audience
      }
      env {
        name  = "OIDC_ALLOWED_EMAILS"
        value = join(",", local.invokers)
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

      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 1
        failure_threshold = 10
        timeout_seconds   = 1
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 30
        failure_threshold = 3
        timeout_seconds   = 5
      }
    }
  }

  lifecycle {
    # Cloud Build deploys new images; Terraform does not roll them back.
    ignore_changes = [
      template[0].containers[0].image,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.runtime_reads_token,
  ]
}
