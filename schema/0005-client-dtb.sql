-- cowroot store schema, version 5: the device tree a client's u-boot
-- script loads instead of the one its board's firmware handed to u-boot.
-- boot_dtb: an absolute path in the client's own root
-- ("/usr/lib/linux-image-6.1.0-28-arm64/broadcom/bcm2837-rpi-3-b.dtb"),
-- NULL when not set.
ALTER TABLE clients ADD COLUMN boot_dtb TEXT;
