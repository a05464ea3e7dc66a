variable "project_id" {
  description = "The Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run service, the scheduler jobs and the Artifact Registry repository."
  type        = string
  default     = "us-central1"
}

variable "github_org" {
  description = "The GitHub organization to collect."
  type        = string
}

variable "github_api_url" {
  description = "GitHub's REST API base; for GitHub Enterprise Server https://HOST/api/v3."
  type        = string
  default     = "https://api.github.com"
}

variable "image" {
  description = "The container image to run first, e.g. REGION-docker.pkg.dev/PROJECT/ghstats/ghstats:COMMIT. Cloud Build deploys later revisions; Terraform does not roll them back."
  type        = string
}

variable "service_name" {
  description = "Name of the Cloud Run service (also part of its URL)."
  type        = string
  default     = "ghstats"
}

variable "artifact_repository" {
  description = "Name of the Artifact Registry Docker repository."
  type        = string
  default     = "ghstats"
}

variable "bucket_name" {
  description = "Name of the bucket for chunks and checkpoints; default PROJECT-ghstats-lake."
  type        = string
  default     = null
}

variable "bucket_location" {
  description = "Location of the bucket; it should match the dataset's."
  type        = string
  default     = "US"
}

variable "dataset_id" {
  description = "BigQuery dataset for the tables and views."
  type        = string
  default     = "ghstats"
}

variable "dataset_location" {
  description = "BigQuery dataset location (US, EU or a region)."
  type        = string
  default     = "US"
}

variable "collect_schedule" {
  description = "Cron schedule of the hourly POST /collect."
  type        = string
  default     = "7 * * * *"
}

variable "collect_hours" {
  description = "The window of each scheduled /collect, in hours; more than the interval, so windows overlap."
  type        = number
  default     = 2
}

variable "sweep_schedule" {
  description = "Cron schedule of the daily sweep: a /collect of the last sweep_hours, which first resumes any unfinished collection."
  type        = string
  default     = "37 3 * * *"
}

variable "sweep_hours" {
  description = "The window of the daily sweep, in hours."
  type        = number
  default     = 26
}

variable "time_zone" {
  description = "Time zone of the schedules."
  type        = string
  default     = "Etc/UTC"
}

variable "run_budget_minutes" {
  description = "How long one run may take before it stops at a page boundary and answers partial. The request timeout and the scheduler's attempt deadline are this plus 5 minutes; Cloud Scheduler allows at most 30 minutes."
  type        = number
  default     = 25
  validation {
    condition     = var.run_budget_minutes >= 5 && var.run_budget_minutes <= 25
    error_message = "run_budget_minutes must be between 5 and 25: the scheduler's attempt deadline (budget + 5 minutes) is at most 30 minutes."
  }
}

variable "chunk_retention_days" {
  description = "Chunks and checkpoints older than this are deleted from the bucket (the warehouse keeps its rows)."
  type        = number
  default     = 400
}

variable "max_workers" {
  description = "Repositories collected at once."
  type        = number
  default     = 4
}

variable "extra_invokers" {
  description = "Other service-account emails allowed to call the service (e.g. a CI pipeline's)."
  type        = list(string)
  default     = []
}

variable "cloudbuild_service_account" {
  description = "Email of the service account Cloud Build runs as; when set it gets what deploying needs (push images, deploy the service, act as the runtime account)."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the Cloud Run service, the bucket's contents and the tables from terraform destroy."
  type        = bool
  default     = true
}

variable "github_app_id" {
  description = "Authenticate as this GitHub App instead of a token: its private key goes in the secret named by the github_app_key_secret output."
  type        = string
  default     = null
}

variable "github_app_installation_id" {
  description = "The App's installation on the organization; looked up from github_org when null."
  type        = number
  default     = null
}

variable "gharchive_enabled" {
  description = "GH Archive (every public GitHub event): the hourly Scheduler job calling POST /gharchive and the Cloud Run Job gharchive-backfill. A year of it is hundreds of GB in the bucket and the dataset (DEPLOYMENT.md, \"GH Archive\")."
  type        = bool
  default     = true
}

variable "gharchive_schedule" {
  description = "Cron schedule of the hourly POST /gharchive (every hour since the last one ingested). GH Archive writes an hour's file some minutes after the hour ends, so not before minute 15."
  type        = string
  default     = "20 * * * *"
}

variable "gharchive_payload" {
  description = "What gharchive_events.payload keeps (GHARCHIVE_PAYLOAD): raw (each event's payload as JSON text, most of the bytes) or none (null)."
  type        = string
  default     = "raw"
  validation {
    condition     = contains(["raw", "none"], var.gharchive_payload)
    error_message = "gharchive_payload must be raw or none."
  }
}

variable "gharchive_job_name" {
  description = "Name of the Cloud Run Job that backfills GH Archive hours (gcloud run jobs execute NAME)."
  type        = string
  default     = "gharchive-backfill"
}

variable "gharchive_backfill_args" {
  description = "Arguments after `ghstats gharchive` for the job, e.g. [\"--from\", \"2025-01-01T00\", \"--to\", \"2025-12-31T23\"]; empty: every hour since the last one ingested. `gcloud run jobs execute --args=…` overrides them for one execution."
  type        = list(string)
  default     = []
}

variable "gharchive_task_count" {
  description = "Tasks of one execution of the job: task I of N takes every N-th hour (CLOUD_RUN_TASK_INDEX / CLOUD_RUN_TASK_COUNT, which Cloud Run sets). `gcloud run jobs execute --tasks=N` overrides it."
  type        = number
  default     = 50
  validation {
    condition     = var.gharchive_task_count >= 1 && var.gharchive_task_count <= 10000
    error_message = "gharchive_task_count must be 1 to 10000 (Cloud Run's limit)."
  }
}

variable "gharchive_parallelism" {
  description = "Tasks of the job that run at once (each 1 vCPU, 1 GiB); 0 lets Cloud Run run as many as it can."
  type        = number
  default     = 10
}

variable "gharchive_task_timeout_minutes" {
  description = "How long one task of the job may run. It stops between hours 10 minutes before (RUN_BUDGET), answers partial, and is retried to continue. At most 24 hours (longer task timeouts are a Cloud Run preview)."
  type        = number
  default     = 360
  validation {
    condition     = var.gharchive_task_timeout_minutes >= 20 && var.gharchive_task_timeout_minutes <= 1440
    error_message = "gharchive_task_timeout_minutes must be 20 to 1440 (24 hours)."
  }
}

variable "gharchive_task_max_retries" {
  description = "Times a task that exits non-zero (partial at its budget, or an hour failed) is run again; each retry skips the hours already ingested."
  type        = number
  default     = 3
}

variable "commits_enabled" {
  description = "Default-branch commits: the Scheduler job calling POST /commits (DEPLOYMENT.md, \"Commits\")."
  type        = bool
  default     = true
}

variable "commits_schedule" {
  description = "Cron schedule of POST /commits; daily by default (hourly works too: a repository whose head has not moved costs one ref listing)."
  type        = string
  default     = "17 4 * * *"
}

variable "commits_repos" {
  description = "Repositories (owner/name) whose commits the scheduled POST /commits reads; empty: every repository of commits_org."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for r in var.commits_repos : can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", r))])
    error_message = "commits_repos takes owner/name entries."
  }
}

variable "commits_org" {
  description = "The organization whose repositories the scheduled POST /commits reads when commits_repos is empty; null: github_org."
  type        = string
  default     = null
}
