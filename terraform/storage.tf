resource "google_storage_bucket" "lake" {
  project                     = var.project_id
  name                        = local.bucket_name
  location                    = var.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  versioning {
    enabled = true
  }

  # Old chunks and checkpoints go; the warehouse keeps the rows.
  lifecycle_rule {
    condition {
      age        = var.chunk_retention_days
      with_state = "LIVE"
    }
    action {
      type = "Delete"
    }
  }

  # Overwritten objects (the run lock, checkpoints) are kept a week for recovery, then deleted.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.apis]
}
