-- Review activity: who reviews how much, and how they decide (bots left out).
SELECT reviewer, reviews_given, prs_reviewed, approvals, changes_requested
FROM ghstats.reviewer_load
WHERE reviewer_type <> 'Bot'
ORDER BY reviews_given DESC, reviewer
LIMIT 20;
