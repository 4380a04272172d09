-- cowroot store schema, version 4: what a client is known by when it boots
-- over the network, and what its kernel is given.
-- serial: the Pi's serial number, 8 lowercase hex digits; mac: its MAC
-- address, lowercase with colons; boot_args: extra kernel command-line
-- arguments.  NULL when not set.  The boot servers look a client up by
-- serial or MAC on every request: both are unique and indexed.
ALTER TABLE clients ADD COLUMN serial TEXT;
ALTER TABLE clients ADD COLUMN mac TEXT;
ALTER TABLE clients ADD COLUMN boot_args TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS clients_serial ON clients(serial) WHERE serial IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS clients_mac ON clients(mac) WHERE mac IS NOT NULL;
