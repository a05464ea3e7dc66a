-- The most changed files: default-branch commits that changed each file (a rename starts a new
-- path), and the lines they changed.
SELECT c.repository,
       f.file_path,
       COUNT(*) AS commits,
       SUM(f.changes) AS lines_changed
FROM ghstats.file_changes f
JOIN ghstats.commits c ON c.repository_id = f.repository_id AND c.commit_sha = f.commit_sha
WHERE f.status <> 'removed'
GROUP BY c.repository, f.file_path
ORDER BY commits DESC, lines_changed DESC, c.repository, f.file_path
LIMIT 20;
