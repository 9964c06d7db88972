-- pgfeed.mark_read of one item by a random user (bench/feed/writes.sh). Users are uniform over
-- 1..:users; items lean to the newest (exponential, mean :items/20 from the top) with a tail through
-- the whole history, as readers mark what the first pages show.
\set u random(1, :users)
\set a :items + 1 - random_exponential(1, :items, 20)
SELECT pgfeed.mark_read('u' || :u, ARRAY[:a]::bigint[]);
