-- no-transaction
-- The console's computer list is a keyset page by name: without an index on the sort key
-- every page sorted (and counted the statuses of) every computer.
CREATE INDEX CONCURRENTLY IF NOT EXISTS computer_sort_name
    ON computer (lower(COALESCE(dns_name, computer_id)), computer_id);
