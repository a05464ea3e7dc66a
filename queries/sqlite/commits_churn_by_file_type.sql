-- Churn by file type: lines added and deleted per extension ('(none)' for names without one),
-- and how many of the changes were to binary files (which count no lines).
SELECT COALESCE(file_type, '(none)') AS extension,
       COUNT(*) AS file_changes,
       SUM(lines_added) AS lines_added,
       SUM(lines_deleted) AS lines_deleted,
       SUM(changes) AS churn,
       SUM(CASE WHEN is_binary THEN 1 ELSE 0 END) AS binary_changes
FROM file_changes
GROUP BY COALESCE(file_type, '(none)')
ORDER BY churn DESC, extension
LIMIT 20;
