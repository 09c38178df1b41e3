/**
 * The wire codec of the peer protocol, one entry for its families: frames
 * (`[u32 big-endian length][UTF-8 JSON]`, frame.ts), index records
 * (record-wire.ts), the index stream's messages (index-wire.ts) and chunk
 * requests (chunk-wire.ts).
 *
 * Pure: bytes and values in, values out. Everything a peer sends is untrusted
 * and passes the decoders here before the sync engine sees it, so a path that
 * could name a place outside the folder, an oversized frame or a record that
 * contradicts itself is rejected at the wire with `PEER_INVALID`.
 */
export * from './frame.js';
export * from './record-wire.js';
export * from './index-wire.js';
export * from './chunk-wire.js';
