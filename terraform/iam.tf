# Least privilege: each grant on the one resource it concerns.

resource "google_storage_bucket_iam_member" "runtime_objects" {
  bucket = google_storage_bucket.lake.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_bigquery_dataset_iam_member" "runtime_data" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.ghstats.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.runtime.email}"
}

# Load and query jobs run in the project; BigQuery has no narrower scope for them.
resource "google_project_iam_member" "runtime_jobs" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_secret_manager_secret_iam_member" "runtime_reads_token" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.github_token.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = toset(local.invokers)
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.ghstats.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${each.value}"
}

# Cloud Build, when its service account is given: push images, deploy revisions that run as
# the runtime account, write build logs.
resource "google_artifact_registry_repository_iam_member" "build_pushes" {
  count      = var.cloudbuild_service_account == null ? 0 : 1
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${var.cloudbuild_service_account}"
}

resource "google_cloud_run_v2_service_iam_member" "build_deploys" {
  count    = var.cloudbuild_service_account == null ? 0 : 1
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.ghstats.name
  role     = "roles/run.developer"
  member   = "serviceAccount:${var.cloudbuild_service_account}"
}

# ... and point the GH Archive job at each new image.
resource "google_cloud_run_v2_job_iam_member" "build_updates_gharchive_job" {
  count    = var.cloudbuild_service_account != null && var.gharchive_enabled ? 1 : 0
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.gharchive_backfill[0].name
  role     = "roles/run.developer"
  member   = "serviceAccount:${var.cloudbuild_service_account}"
}

resource "google_service_account_iam_member" "build_acts_as_runtime" {
  count              = var.cloudbuild_service_account == null ? 0 : 1
  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${var.cloudbuild_service_account}"
}

resource "google_project_iam_member" "build_logs" {
  count   = var.cloudbuild_service_account == null ? 0 : 1
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${var.cloudbuild_service_account}"
}
