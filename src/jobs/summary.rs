//! The summary job: what is stored per repository, table and collection date (files, rows,
//! bytes), and the warehouse's row counts beside it.

use crate::lake::checkpoint::{self, DAMAGED_SUFFIX};
use crate::lake::{chunk::decode_chunk, Damaged, Lake};
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
    /// Stored files that cannot be read: checkpoints set aside (`set_aside_as`) or not yet,
    /// and chunks no checkpoint counts that do not decode, each with its path and why.
    pub damaged: Vec<Damaged>,
}

pub async fn summary(lake: &Lake, org: &OrgName, wh: &dyn Warehouse) -> anyhow::Result<Summary> {
    // Row counts come from the checkpoints; a chunk no checkpoint names is counted by reading it.
    let mut rows_of: HashMap<String, u64> = HashMap::new();
    let mut collections = 0;
    let mut damaged = Vec::new();
    for (path, _) in lake.list(&lake.checkpoints_dir(org)).await? {
        let Ok(bytes) = lake.get(&path).await else {
            continue;
        };
        let aside = path.as_ref().strip_suffix(DAMAGED_SUFFIX);
        match (checkpoint::parse(&bytes), aside) {
            (Ok(cp), None) => {
                collections += 1;
                rows_of.extend(cp.chunks.into_iter().map(|c| (c.path, c.rows)));
            }
            (parsed, _) => damaged.push(Damaged {
                path: aside.unwrap_or(path.as_ref()).to_string(),
                reason: parsed.err().unwrap_or_else(|| "set aside".into()),
                set_aside_as: aside.map(|_| path.to_string()),
            }),
        }
    }
    let mut groups: BTreeMap<(String, String, String), Stored> = BTreeMap::new();
    for (path, size) in lake.list(&lake.org_dir(org)).await? {
        let Some(loc) = lake.parse_chunk_path(&path) else {
            continue;
        };
        let rows = match rows_of.get(path.as_ref()) {
            Some(n) => *n,
            None => match decode_chunk(&lake.get(&path).await?) {
                Ok(rows) => rows.len() as u64,
                Err(e) => {
                    damaged.push(Damaged {
                        path: path.to_string(),
                        reason: e.to_string(),
                        set_aside_as: None,
                    });
                    0
                }
            },
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
        damaged,
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
    if !s.damaged.is_empty() {
        out.push_str("\ndamaged\n");
        for d in &s.damaged {
            match &d.set_aside_as {
                Some(to) => {
                    out.push_str(&format!("  {} (set aside as {to}): {}\n", d.path, d.reason))
                }
                None => out.push_str(&format!("  {}: {}\n", d.path, d.reason)),
            }
        }
    }
    out
}
