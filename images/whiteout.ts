/**
 * How deletions are written: in a layer tar (the image spec's AUFS convention) and, once
 * unpacked, on disk for overlayfs. Apart from unpack.ts so that `run -u` (images/user.ts, which
 * reads unpacked layers) loads no more than these names.
 */

/** Prefix of a whiteout entry in a layer tar (the AUFS convention of the image spec). */
export const WHITEOUT_PREFIX = ".wh.";
/** Name of the entry that makes its directory opaque. */
export const OPAQUE_MARKER = ".wh..wh..opq";
/** The xattr by which overlayfs knows an opaque directory. */
export const OPAQUE_XATTR = "trusted.overlay.opaque";
