-- Pull-request size distribution (additions + deletions) and how long each size takes to merge.
SELECT size_bucket,
       COUNT(*) AS prs,
       SUM(CASE WHEN merged_at IS NOT NULL THEN 1 ELSE 0 END) AS merged,
       ROUND(AVG(hours_to_merge), 1) AS avg_hours_to_merge
FROM pr_velocity
GROUP BY size_bucket
ORDER BY CASE size_bucket WHEN 'XS' THEN 1 WHEN 'S' THEN 2 WHEN 'M' THEN 3 WHEN 'L' THEN 4 ELSE 5 END;
