-- GH Archive: pushes per hour (UTC) of one day, who pushed, to how many repositories, and the
-- commits pushed (push_size: null where GitHub trimmed the payload, from October 2025).
SELECT strftime('%Y-%m-%dT%H:00:00Z', created_at) AS hour,
       COUNT(*) AS pushes,
       COUNT(DISTINCT actor_login) AS pushers,
       COUNT(DISTINCT repo_name) AS repositories,
       SUM(push_size) AS commits
FROM gharchive_events
WHERE event_type = 'PushEvent'
  AND created_at >= '2025-01-15' AND created_at < '2025-01-16'
GROUP BY hour
ORDER BY hour;
