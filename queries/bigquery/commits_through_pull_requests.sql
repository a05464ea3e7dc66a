-- Default-branch commits that came through a pull request, per repository and month: a commit
-- whose sha is among the pull requests' commits. A squash or rebase merge writes new commits,
-- so those count as direct; merge commits are left out.
SELECT c.repository,
       c.commit_month,
       COUNT(*) AS commits,
       COUNT(p.sha) AS via_pull_requests
FROM ghstats.commits c
LEFT JOIN (SELECT DISTINCT repository_id, sha FROM ghstats.pr_commits) p
  ON p.repository_id = c.repository_id AND p.sha = c.commit_sha
WHERE NOT c.is_merge
GROUP BY c.repository, c.commit_month
ORDER BY c.commit_month DESC, c.repository
LIMIT 50;
