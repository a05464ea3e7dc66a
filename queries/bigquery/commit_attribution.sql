-- Commit attribution: commits in pull requests per GitHub account, with commits by an email that
-- is linked to no account shown by their git author name.
SELECT COALESCE(author, CONCAT('(no account) ', COALESCE(author_name, '?'))) AS commit_author,
       COUNT(*) AS commits,
       SUM(additions) AS additions,
       SUM(deletions) AS deletions,
       COUNT(DISTINCT CONCAT(repository, '#', CAST(pr_number AS STRING))) AS prs
FROM ghstats.pr_commits
GROUP BY commit_author
ORDER BY commits DESC, commit_author
LIMIT 20;
