-- The largest commits: lines added plus deleted, merges left out (a merge's lines are its
-- diff against its first parent: the branch it brings in).
SELECT repository,
       commit_sha,
       COALESCE(author_login, author_email) AS author,
       commit_at,
       num_files_changed,
       num_lines_added + num_lines_deleted AS lines_changed
FROM ghstats.commits
WHERE NOT is_merge
ORDER BY lines_changed DESC, repository, commit_sha
LIMIT 20;
