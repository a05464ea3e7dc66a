//! One comparable form of a `gharchive_events` row (payload and `archive_hour` aside), built
//! from the simulator's truth or from a warehouse's cells, so tests compare them as strings.

use chrono::{DateTime, Utc};

/// A row's columns in the table's order; `event_id` is `None` for a synthetic (negative) id.
#[derive(Clone, Debug, Default)]
pub struct EventLine {
    pub event_id: Option<i64>,
    pub event_type: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub public: Option<bool>,
    pub actor_id: Option<i64>,
    pub actor_login: Option<String>,
    pub repo_id: Option<i64>,
    pub repo_name: Option<String>,
    pub org_id: Option<i64>,
    pub org_login: Option<String>,
    pub action: Option<String>,
    pub number: Option<i64>,
    pub git_ref: Option<String>,
    pub push_head: Option<String>,
    pub push_size: Option<i64>,
}

impl EventLine {
    /// The stored id as the truth names it: a negative (synthetic) id is `None`.
    pub fn id(stored: i64) -> Option<i64> {
        (stored >= 0).then_some(stored)
    }

    pub fn of_truth(e: &github_sim::EventTruth) -> Self {
        EventLine {
            event_id: e.event_id,
            event_type: Some(e.event_type.clone()),
            created_at: Some(e.created_at),
            public: e.public,
            actor_id: e.actor_id,
            actor_login: Some(e.actor_login.clone()),
            repo_id: Some(e.repo_id),
            repo_name: Some(e.repo_name.clone()),
            org_id: e.org_id,
            org_login: e.org_login.clone(),
            action: e.action.clone(),
            number: e.number,
            git_ref: e.git_ref.clone(),
            push_head: e.push_head.clone(),
            push_size: e.push_size,
        }
    }

    /// `id|type|created_at|…`, with `synthetic` for a missing id.
    pub fn line(&self) -> String {
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.event_id
                .map(|i| i.to_string())
                .unwrap_or("synthetic".into()),
            self.event_type,
            self.created_at,
            self.public,
            self.actor_id,
            self.actor_login,
            self.repo_id,
            self.repo_name,
            self.org_id,
            self.org_login,
            self.action,
            self.number,
            self.git_ref,
            self.push_head,
            self.push_size,
        )
    }
}

/// The hour's own rows by the simulator's truth, as sorted lines.
pub fn truth_lines(sim: &github_sim::Simulator, h: DateTime<Utc>) -> Vec<String> {
    let mut lines: Vec<String> = sim
        .gharchive_truth(h)
        .events
        .iter()
        .map(|e| EventLine::of_truth(e).line())
        .collect();
    lines.sort();
    lines
}
