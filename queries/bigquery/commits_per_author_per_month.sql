-- Commits per author per month on the default branches: the GitHub account where GitHub links
-- the author's email to one, else the email; merges left out.
SELECT commit_month,
       COALESCE(author_login, author_email) AS author,
       COUNT(*) AS commits,
       SUM(num_lines_added) AS lines_added,
       SUM(num_lines_deleted) AS lines_deleted
FROM ghstats.commits
WHERE NOT is_merge
GROUP BY commit_month, COALESCE(author_login, author_email)
ORDER BY commit_month DESC, commits DESC, author
LIMIT 50;
