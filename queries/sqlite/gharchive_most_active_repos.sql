-- GH Archive: the most active repositories of one day (UTC): events, distinct actors, pushes
-- and pull-request events.
SELECT repo_name,
       COUNT(*) AS events,
       COUNT(DISTINCT actor_login) AS actors,
       SUM(CASE WHEN event_type = 'PushEvent' THEN 1 ELSE 0 END) AS pushes,
       SUM(CASE WHEN event_type = 'PullRequestEvent' THEN 1 ELSE 0 END) AS pull_request_events
FROM gharchive_events
WHERE created_at >= '2025-01-15' AND created_at < '2025-01-16'
GROUP BY repo_name
ORDER BY events DESC, repo_name
LIMIT 20;
