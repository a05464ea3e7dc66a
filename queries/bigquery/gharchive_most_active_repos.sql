-- GH Archive: the most active repositories of one day (UTC): events, distinct actors, pushes
-- and pull-request events.
SELECT repo_name,
       COUNT(*) AS events,
       COUNT(DISTINCT actor_login) AS actors,
       COUNTIF(event_type = 'PushEvent') AS pushes,
       COUNTIF(event_type = 'PullRequestEvent') AS pull_request_events
FROM ghstats.gharchive_events
WHERE created_at >= TIMESTAMP('2025-01-15') AND created_at < TIMESTAMP('2025-01-16')
GROUP BY repo_name
ORDER BY events DESC, repo_name
LIMIT 20;
