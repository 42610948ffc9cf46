-- The console's computer list is a keyset page by name: without an index on the sort key
-- every page sorted (and counted the statuses of) every computer. Built in the migration's
-- transaction: CREATE INDEX CONCURRENTLY waits for every open transaction, among them a
-- second migrating process waiting on the migration lock this one holds (a deadlock);
-- 150,000 computers index in well under a second.
CREATE INDEX IF NOT EXISTS computer_sort_name ON computer (lower(COALESCE(dns_name, computer_id)), computer_id);
