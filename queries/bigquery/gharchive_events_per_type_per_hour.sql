-- GH Archive: events per type per hour (UTC) of one day; set the day in the WHERE clause.
SELECT FORMAT_TIMESTAMP('%Y-%m-%dT%H:00:00Z', created_at) AS hour,
       event_type,
       COUNT(*) AS events
FROM ghstats.gharchive_events
WHERE created_at >= TIMESTAMP('2025-01-15') AND created_at < TIMESTAMP('2025-01-16')
GROUP BY hour, event_type
ORDER BY hour, events DESC, event_type;
