-- Velocity by author: merged pull requests of the last 90 days, hours to first review and to merge.
SELECT author,
       COUNT(*) AS merged_prs,
       ROUND(AVG(hours_to_first_review), 1) AS avg_hours_to_first_review,
       ROUND(AVG(hours_to_merge), 1) AS avg_hours_to_merge
FROM pr_velocity
WHERE merged_at IS NOT NULL
  AND author_type <> 'Bot'
  AND julianday(merged_at) >= julianday('now', '-90 days')
GROUP BY author
ORDER BY merged_prs DESC, author
LIMIT 20;
