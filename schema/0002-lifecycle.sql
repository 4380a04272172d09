-- cowroot store schema, version 2: client and image lifecycle.
-- A client keeps one id for life, across reset, snapshot and rebase (its
-- layer changes, its id does not): NFS file handles carry it, so a handle
-- names one client and is never valid in another client's export.
ALTER TABLE clients ADD COLUMN id INTEGER NOT NULL DEFAULT 0;
UPDATE clients SET id = rowid;
INSERT OR REPLACE INTO meta (key, value)
	VALUES ('next_client', (SELECT ifnull(max(id), 0) + 1 FROM clients));
CREATE UNIQUE INDEX IF NOT EXISTS clients_id ON clients(id);
