-- cowroot store schema, version 7: per-client quotas.
-- quota_bytes: the most data the client's layer may hold (allocated bytes
-- of its data files and the bytes of its xattrs); quota_files: the most
-- objects it may record.  NULL: no limit.  A store-wide default for new
-- clients is kept in meta as 'default_quota_bytes' / 'default_quota_files'
-- (absent: none); a client takes it when added.
ALTER TABLE clients ADD COLUMN quota_bytes INTEGER;
ALTER TABLE clients ADD COLUMN quota_files INTEGER;
