-- GH Archive: events per type per hour (UTC) of one day; set the day in the WHERE clause.
SELECT strftime('%Y-%m-%dT%H:00:00Z', created_at) AS hour,
       event_type,
       COUNT(*) AS events
FROM gharchive_events
WHERE created_at >= '2025-01-15' AND created_at < '2025-01-16'
GROUP BY hour, event_type
ORDER BY hour, events DESC, event_type;
