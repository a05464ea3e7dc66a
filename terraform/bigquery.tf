resource "google_bigquery_dataset" "ghstats" {
  project                    = var.project_id
  dataset_id                 = var.dataset_id
  location                   = var.dataset_location
  description                = "ghstats: pull requests, commits, reviews and comments of ${var.github_org}"
  delete_contents_on_destroy = !var.deletion_protection

  depends_on = [google_project_service.apis]
}

# Every table from the code's one definition: partitioned by day (the commits tables, whose
# history spans decades, by month: BigQuery allows 4,000 partitions a table), clustered,
# protected.
resource "google_bigquery_table" "tables" {
  for_each            = local.tables
  project             = var.project_id
  dataset_id          = google_bigquery_dataset.ghstats.dataset_id
  table_id            = each.key
  schema              = jsonencode(each.value.schema)
  clustering          = each.value.clustering
  deletion_protection = var.deletion_protection

  dynamic "time_partitioning" {
    for_each = each.value.partition_field == null ? [] : [each.value.partition_field]
    content {
      type  = each.value.partition_type
      field = time_partitioning.value
    }
  }
}
