output "service_url" {
  description = "The Cloud Run service's URL."
  value       = google_cloud_run_v2_service.ghstats.uri
}

output "audience" {
  description = "The audience to request ID tokens for (gcloud auth print-identity-token --audiences=...)."
  value       = local.audience
}

output "bucket" {
  description = "The bucket holding chunks and checkpoints."
  value       = google_storage_bucket.lake.name
}

output "dataset" {
  description = "The BigQuery dataset, as PROJECT.DATASET."
  value       = "${var.project_id}.${google_bigquery_dataset.ghstats.dataset_id}"
}

output "runtime_service_account" {
  description = "The account the service runs as."
  value       = google_service_account.runtime.email
}

output "invoker_service_account" {
  description = "The account Cloud Scheduler calls the service as; impersonate it to call by hand."
  value       = google_service_account.invoker.email
}

output "image_repository" {
  description = "Where Cloud Build pushes images."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}/ghstats"
}

output "github_token_secret" {
  description = "The Secret Manager secret to put the GitHub token (or, with github_app_id, the App's private key PEM) in."
  value       = google_secret_manager_secret.github_token.secret_id
}

output "gharchive_backfill_job" {
  description = "The Cloud Run Job that backfills GH Archive hours (gcloud run jobs execute NAME --region=REGION --args=--from,…,--to,… --tasks=N); null when gharchive_enabled is false."
  value       = var.gharchive_enabled ? google_cloud_run_v2_job.gharchive_backfill[0].name : null
}
