-- Commit attribution: commits in pull requests per GitHub account, with commits by an email that
-- is linked to no account shown by their git author name.
SELECT COALESCE(author, '(no account) ' || COALESCE(author_name, '?')) AS commit_author,
       COUNT(*) AS commits,
       SUM(additions) AS additions,
       SUM(deletions) AS deletions,
       COUNT(DISTINCT repository || '#' || pr_number) AS prs
FROM pr_commits
GROUP BY commit_author
ORDER BY commits DESC, commit_author
LIMIT 20;
