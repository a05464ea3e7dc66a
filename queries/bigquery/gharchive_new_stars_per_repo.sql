-- GH Archive: new stars per repository of one day (UTC). A star is a WatchEvent; someone who
-- stars a repository again after unstarring it counts once among its stargazers.
SELECT repo_name,
       COUNT(*) AS new_stars,
       COUNT(DISTINCT actor_login) AS stargazers
FROM ghstats.gharchive_events
WHERE event_type = 'WatchEvent'
  AND created_at >= TIMESTAMP('2025-01-15') AND created_at < TIMESTAMP('2025-01-16')
GROUP BY repo_name
ORDER BY new_stars DESC, repo_name
LIMIT 20;
