# ghstats on Google Cloud: the Cloud Run service, its bucket, dataset and tables, the GitHub
# token's secret, the Cloud Scheduler jobs, the GH Archive backfill's Cloud Run Job
# (gharchive.tf), and the service accounts with least privilege.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  apis = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
  bucket_name = coalesce(var.bucket_name, "${var.project_id}-ghstats-lake")
  # The service's deterministic URL: the audience of the scheduler's ID tokens and of the
  # service's own OIDC check (the service cannot refer to its own `uri` without a cycle).
  audience = "https://${var.service_name}-${data.google_project.this.number}.${var.region}.run.app"
  # One run budget; the request timeout and the scheduler's deadline leave 5 minutes after it
  # for the final checkpoint and the load.
  request_timeout_s = (var.run_budget_minutes + 5) * 60
  # The tables as the code defines them: `ghstats bigquery-schema > terraform/bigquery_tables.json`.
  tables  = jsondecode(file("${path.module}/bigquery_tables.json")).tables
  use_app = var.github_app_id != null
  # The GitHub credential's secret: an App's private key, or a token.
  github_secret = local.use_app ? {
    name = "GITHUB_APP_PRIVATE_KEY"
    id   = "${var.service_name}-github-app-key"
    } : {
    name = "GITHUB_TOKEN"
    id   = "${var.service_name}-github-token"
  }
  app_env = local.use_app ? merge(
    { GITHUB_APP_ID = var.github_app_id },
    var.github_app_installation_id == null ? {} : { GITHUB_APP_INSTALLATION_ID = tostring(var.github_app_installation_id) },
  ) : {}
  # The settings the service and the GH Archive job share: the job runs the same image as the
  # same account, against the same bucket and dataset.
  runtime_env = merge({
    GITHUB_ORG           = var.github_org
    GITHUB_API_URL       = var.github_api_url
    STORAGE_URL          = "gs://${google_storage_bucket.lake.name}"
    WAREHOUSE_URL        = "bigquery://${var.project_id}/${google_bigquery_dataset.ghstats.dataset_id}?location=${var.dataset_location}"
    GHARCHIVE_PAYLOAD    = var.gharchive_payload
    LOG_FORMAT           = "json"
    GOOGLE_CLOUD_PROJECT = var.project_id
  }, local.app_env)
  invokers = concat(
    [google_service_account.invoker.email],
    var.extra_invokers,
  )
}

resource "google_project_service" "apis" {
  for_each           = toset(local.apis)
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  project       = var.project_id
  location      = var.region
  repository_id = var.artifact_repository
  format        = "DOCKER"
  description   = "ghstats container images"

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.service_name}-run"
  display_name = "ghstats runtime (Cloud Run)"
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.service_name}-invoker"
  display_name = "ghstats invoker (Cloud Scheduler, CI)"
}

# The GitHub token (or the App's private key); its value is added outside Terraform.
resource "google_secret_manager_secret" "github_token" {
  project   = var.project_id
  secret_id = local.github_secret.id

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}
