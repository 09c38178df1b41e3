/**
 * TLS settings shared by the peer listener and the peer dialer: TLS 1.3,
 * both sides present their device certificate, and each side pins the other
 * by device ID (the certificates are self-signed, so no CA is involved).
 */
import type { TLSSocket } from 'node:tls';
import { deviceIdOfCert } from '../identity/identity.js';

/** This device's key and certificate, PEM. */
export interface TlsIdentity {
  readonly keyPem: string;
  readonly certPem: string;
}

/** HTTP/2 flow-control window per stream: large, so one stream can fill a fast link. */
const STREAM_WINDOW = 16 * 1024 * 1024;
/** HTTP/2 flow-control window per connection. */
export const SESSION_WINDOW = 64 * 1024 * 1024;

/** Options common to both ends. */
export function tlsOptions(id: TlsIdentity) {
  return {
    key: id.keyPem,
    cert: id.certPem,
    minVersion: 'TLSv1.3' as const,
    // Self-signed certificates: trust comes from pinning the device ID.
    rejectUnauthorized: false,
    settings: { initialWindowSize: STREAM_WINDOW, maxFrameSize: 1 << 20 },
  };
}

/** The device ID of the certificate the other end presented, or undefined if none. */
export function peerDeviceId(socket: TLSSocket): string | undefined {
  const cert = socket.getPeerCertificate();
  // An absent certificate is an empty object.
  if (cert === null || !('raw' in cert) || cert.raw === undefined) return undefined;
  try {
    return deviceIdOfCert(cert.raw);
  } catch {
    return undefined;
  }
}

/**
 * Why the certificate the other end presented is not acceptable although its
 * device ID may be configured: outside its validity period (expired, or not
 * valid yet). Undefined when it is acceptable (or absent: see {@link peerDeviceId}).
 */
export function peerCertProblem(socket: TLSSocket, now = Date.now()): string | undefined {
  const cert = socket.getPeerCertificate();
  if (cert === null || !('valid_to' in cert) || typeof cert.valid_to !== 'string') return undefined;
  const to = Date.parse(cert.valid_to);
  const from = Date.parse(cert.valid_from);
  if (Number.isFinite(to) && to < now) return `its certificate expired on ${cert.valid_to}`;
  if (Number.isFinite(from) && from > now)
    return `its certificate is valid only from ${cert.valid_from}`;
  return undefined;
}
