-- cowroot store schema, version 1.
-- Every object has a store-wide id (ino).  A layer holds versions of objects
-- (inodes), names (dirents) and xattrs; a view stacks a client layer over the
-- layers of its image chain and the topmost row for an (ino) or a
-- (parent, name) wins.  A dirent with ino 0 is a whiteout.

CREATE TABLE meta (
	key TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('next_ino', 2);

-- kind: 0 image layer (frozen), 1 client layer (writable), 2 dead (to be removed by gc).
CREATE TABLE layers (
	id INTEGER PRIMARY KEY,
	parent INTEGER REFERENCES layers(id),
	kind INTEGER NOT NULL,
	root INTEGER NOT NULL,
	created INTEGER NOT NULL
);

CREATE TABLE images (
	name TEXT PRIMARY KEY,
	layer INTEGER NOT NULL UNIQUE REFERENCES layers(id),
	created INTEGER NOT NULL
);

CREATE TABLE clients (
	name TEXT PRIMARY KEY,
	image TEXT NOT NULL REFERENCES images(name),
	layer INTEGER NOT NULL UNIQUE REFERENCES layers(id),
	addrs TEXT NOT NULL DEFAULT '',
	created INTEGER NOT NULL
);

-- One version of an object in one layer.  Regular file content lives in the
-- data file of layer data_layer (data/<layer>/<ino % 256>/<ino>); 0 = none
-- (empty file).  Times are nanoseconds since the epoch.
CREATE TABLE inodes (
	layer INTEGER NOT NULL,
	ino INTEGER NOT NULL,
	mode INTEGER NOT NULL,
	nlink INTEGER NOT NULL,
	uid INTEGER NOT NULL,
	gid INTEGER NOT NULL,
	rdev INTEGER NOT NULL DEFAULT 0,
	size INTEGER NOT NULL DEFAULT 0,
	atime INTEGER NOT NULL,
	mtime INTEGER NOT NULL,
	ctime INTEGER NOT NULL,
	data_layer INTEGER NOT NULL DEFAULT 0,
	target BLOB,
	PRIMARY KEY (layer, ino)
) WITHOUT ROWID;

CREATE TABLE dirents (
	layer INTEGER NOT NULL,
	parent INTEGER NOT NULL,
	name BLOB NOT NULL,
	ino INTEGER NOT NULL,
	type INTEGER NOT NULL,
	PRIMARY KEY (layer, parent, name)
) WITHOUT ROWID;

-- An inode row owns its xattrs: a layer that records an object records all
-- of its xattrs.
CREATE TABLE xattrs (
	layer INTEGER NOT NULL,
	ino INTEGER NOT NULL,
	name BLOB NOT NULL,
	value BLOB NOT NULL,
	PRIMARY KEY (layer, ino, name)
) WITHOUT ROWID;
