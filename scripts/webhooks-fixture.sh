#!/usr/bin/env bash
# Regenerates crates/github-sim/fixtures/webhooks-examples.json.gz, the payload templates the
# GH Archive simulator builds its events from, out of the npm package @octokit/webhooks-examples
# (MIT, real example payloads of GitHub's webhooks).
#
# Keeps the 15 event types GH Archive carries, reduces each webhook payload to the Events API
# payload shape (drops repository, sender, organization, installation and enterprise; the push
# payload becomes {repository_id, push_id, size, distinct_size, ref, head, before, commits}),
# keeps the actions the Events API reports (at most two examples per action, eight per type
# without actions) and writes compact JSON, gzip -9 without a timestamp, so the same package
# version gives the same bytes. The fixture is committed; run this only to refresh it.
#   scripts/webhooks-fixture.sh [VERSION]    (default 7.6.1; needs node and npm)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-7.6.1}"
out=crates/github-sim/fixtures/webhooks-examples.json.gz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

npm install --silent --no-audit --no-fund --prefix "$work" "@octokit/webhooks-examples@$version" >/dev/null
index="$work/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
[ -f "$index" ] || { echo "webhooks-fixture: $index not found in the package" >&2; exit 1; }

node - "$index" "$version" >"$work/fixture.json" <<'EOF'
const fs = require('fs');
const [index, version] = process.argv.slice(2);
const hooks = JSON.parse(fs.readFileSync(index, 'utf8'));
const byName = Object.fromEntries(hooks.map((h) => [h.name, h.examples || []]));

// Webhook name -> GH Archive type, the actions the Events API reports (null: the payload has
// no action) and how a webhook action is renamed there.
const types = [
  ['push', 'PushEvent', null],
  ['create', 'CreateEvent', null],
  ['delete', 'DeleteEvent', null],
  ['pull_request', 'PullRequestEvent', ['opened', 'closed', 'reopened', 'assigned', 'unassigned',
    'review_requested', 'review_request_removed', 'labeled', 'unlabeled', 'synchronize', 'edited']],
  ['watch', 'WatchEvent', ['started']],
  ['issues', 'IssuesEvent', ['opened', 'edited', 'closed', 'reopened', 'assigned', 'unassigned',
    'labeled', 'unlabeled']],
  ['issue_comment', 'IssueCommentEvent', ['created', 'edited', 'deleted']],
  ['fork', 'ForkEvent', null],
  ['release', 'ReleaseEvent', ['published']],
  ['pull_request_review', 'PullRequestReviewEvent', ['submitted', 'dismissed'], { submitted: 'created' }],
  ['pull_request_review_comment', 'PullRequestReviewCommentEvent', ['created']],
  ['member', 'MemberEvent', ['added']],
  ['public', 'PublicEvent', null],
  ['gollum', 'GollumEvent', null],
  ['commit_comment', 'CommitCommentEvent', ['created']],
];
const webhookOnly = ['repository', 'sender', 'organization', 'installation', 'enterprise'];

function pushPayload(w) {
  const commits = (w.commits || []).map((c) => ({
    sha: c.id,
    author: { email: c.author && c.author.email, name: c.author && c.author.name },
    message: c.message,
    distinct: c.distinct,
    url: c.url,
  }));
  return {
    repository_id: w.repository && w.repository.id,
    push_id: null,
    size: commits.length,
    distinct_size: commits.filter((c) => c.distinct).length,
    ref: w.ref,
    head: w.after,
    before: w.before,
    commits,
  };
}

const events = {};
for (const [hook, type, actions, rename] of types) {
  const perAction = {};
  const kept = [];
  for (const w of byName[hook] || []) {
    const action = w.action === undefined ? null : w.action;
    if (actions && !actions.includes(action)) continue;
    const key = String(action);
    perAction[key] = (perAction[key] || 0) + 1;
    if (perAction[key] > (actions ? 2 : 8)) continue;
    let payload;
    if (hook === 'push') {
      payload = pushPayload(w);
    } else {
      payload = { ...w };
      for (const k of webhookOnly) delete payload[k];
      if (rename && rename[action]) payload.action = rename[action];
    }
    kept.push({ repo: w.repository ? w.repository.full_name : null, payload });
  }
  if (kept.length === 0) throw new Error(`no ${hook} examples kept`);
  events[type] = kept;
}

// Real commit shapes ({message, author}) from every example that carries one, for pushes.
const seen = new Set();
const commits = [];
(function walk(v) {
  if (Array.isArray(v)) return v.forEach(walk);
  if (v === null || typeof v !== 'object') return;
  if (typeof v.message === 'string' && v.author && typeof v.author === 'object' && (v.id || v.sha)) {
    const c = { message: v.message, author: { email: v.author.email, name: v.author.name } };
    const k = JSON.stringify(c);
    if (!seen.has(k)) { seen.add(k); commits.push(c); }
  }
  Object.values(v).forEach(walk);
})(hooks);
commits.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

process.stdout.write(JSON.stringify({
  source: `@octokit/webhooks-examples ${version} (MIT), api.github.com/index.json`,
  events,
  commits,
}));
EOF

mkdir -p "$(dirname "$out")"
gzip -9 -n -c "$work/fixture.json" >"$out"
echo "wrote $out ($(wc -c <"$out") bytes; $(wc -c <"$work/fixture.json") bytes of JSON)"
