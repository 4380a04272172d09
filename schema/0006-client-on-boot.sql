-- cowroot store schema, version 6: what happens to a client's layer when
-- it boots.  on_boot: 'reset' (every boot starts from the image: the boot
-- server resets the layer at the client's first request of a boot), or
-- NULL (keep, the default).
ALTER TABLE clients ADD COLUMN on_boot TEXT;
