terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source = "hashicorp/google"
      # The checks in CI validate against the google provider 6.50 schema.
      version = "~> 6.50"
    }
  }
  # State lives in a bucket created once by hand (DEPLOYMENT.md):
  #   terraform init -backend-config="bucket=PROJECT-tfstate"
  backend "gcs" {
    prefix = "ghstats"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
