-- cowroot store schema, version 8: layers imported from OCI images.
-- digest: the OCI chain id of an image layer imported from an OCI image
-- ("sha256:" and 64 hex digits: the layer's content together with every
-- layer beneath it), NULL for every other layer.  An import finds a layer
-- it already holds by it, so images built on one base store it once.
-- Such a layer need not be an image's top layer: it stays while an image
-- layer above it does.
ALTER TABLE layers ADD COLUMN digest TEXT;
CREATE INDEX layers_digest ON layers(digest) WHERE digest IS NOT NULL;
