//! The summary job: what is stored per repository, table and collection date (files, rows,
//! bytes), and the warehouse's row counts beside it.

use crate::lake::{chunk::decode_chunk, Checkpoint, Lake};
use crate::names::OrgName;
use crate::warehouse::Warehouse;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stored {
    pub repository: String,
    pub table: String,
    pub date: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub organization: String,
    pub stored: Vec<Stored>,
    pub collections: usize,
    pub warehouse: BTreeMap<String, u64>,
}

pub async fn summary(lake: &Lake, org: &OrgName, wh: &dyn Warehouse) -> anyhow::Result<Summary> {
    // Row counts come from the checkpoints; a chunk no checkpoint names is counted by reading it.
    let mut rows_of: HashMap<String, u64> = HashMap::new();
    let mut collections = 0;
    for (path, _) in lake.list(&lake.checkpoints_dir(org)).await? {
        let Ok(bytes) = lake.get(&path).await else {
            continue;
        };
        if let Ok(cp) = serde_json::from_slice::<Checkpoint>(&bytes) {
            collections += 1;
            rows_of.extend(cp.chunks.into_iter().map(|c| (c.path, c.rows)));
        }
    }
    let mut groups: BTreeMap<(String, String, String), Stored> = BTreeMap::new();
    for (path, size) in lake.list(&lake.org_dir(org)).await? {
        let Some(loc) = lake.parse_chunk_path(&path) else {
            continue;
        };
        let rows = match rows_of.get(path.as_ref()) {
            Some(n) => *n,
            None => decode_chunk(&lake.get(&path).await?)?.len() as u64,
        };
        let date = loc.date.to_string();
        let g = groups
            .entry((loc.repo.to_string(), loc.table.clone(), date.clone()))
            .or_insert_with(|| Stored {
                repository: loc.repo.to_string(),
                table: loc.table.clone(),
                date,
                ..Stored::default()
            });
        g.files += 1;
        g.rows += rows;
        g.bytes += size;
    }
    Ok(Summary {
        organization: org.to_string(),
        stored: groups.into_values().collect(),
        collections,
        warehouse: wh.row_counts().await?,
    })
}

/// The summary as a plain-text table.
pub fn render(s: &Summary) -> String {
    let mut out = format!(
        "organization {}: {} collections\n\n",
        s.organization, s.collections
    );
    out.push_str(&format!(
        "{:<24} {:<16} {:<10} {:>6} {:>10} {:>12}\n",
        "repository", "table", "date", "files", "rows", "bytes"
    ));
    for r in &s.stored {
        out.push_str(&format!(
            "{:<24} {:<16} {:<10} {:>6} {:>10} {:>12}\n",
            r.repository, r.table, r.date, r.files, r.rows, r.bytes
        ));
    }
    out.push_str("\nwarehouse rows\n");
    for (t, n) in &s.warehouse {
        out.push_str(&format!("  {t:<16} {n:>10}\n"));
    }
    out
}
