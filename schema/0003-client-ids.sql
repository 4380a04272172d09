-- cowroot store schema, version 3: client ids are reused, generations tell
-- their holders apart.
-- Ids stay in 1..65535 (they are ganesha's Export_Id) and a freed id goes
-- to a later client, so an NFS handle names a client by (id, gen): gen is
-- random and never 0 for a client added from version 3 on.  gen 0 marks a
-- client that existed before: its handles (version 1, without gen) stay
-- valid, and no other client can hold its id, since ids were never reused
-- until now.
ALTER TABLE clients ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;
-- Clients numbered past 65535 were never served, so nothing holds a handle
-- of theirs: they take free ids, with a generation, as a new client would.
CREATE TEMP TABLE renumber AS
	WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 65535),
	free AS (SELECT i, row_number() OVER (ORDER BY i) AS k FROM n WHERE i NOT IN (SELECT id FROM clients)),
	big AS (SELECT name, row_number() OVER (ORDER BY id) AS k FROM clients WHERE id > 65535)
	SELECT big.name AS name, free.i AS id FROM big JOIN free USING (k);
UPDATE clients SET id = (SELECT r.id FROM renumber r WHERE r.name = clients.name),
	gen = 1 + abs(random() % 9223372036854775807)
	WHERE name IN (SELECT name FROM renumber);
DROP TABLE renumber;
