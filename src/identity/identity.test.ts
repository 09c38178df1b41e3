import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { LockstepError } from '../base/errors.js';
import { parseDeviceId } from '../core/device-id.js';
import { createIdentity, deviceIdOfCert, type Identity } from './identity.js';

describe('createIdentity', () => {
  it('makes a P-256 key and a matching self-signed certificate valid for about 20 years', async () => {
    const { keyPem, certPem } = await createIdentity('lockstep');
    const cert = new X509Certificate(certPem);
    const key = createPrivateKey(keyPem);
    expect(key.asymmetricKeyType).toBe('ec');
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkPrivateKey(key)).toBe(true);
    expect(cert.subject).toBe('CN=lockstep');
    expect(cert.issuer).toBe('CN=lockstep');
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    const years = (Date.parse(cert.validTo) - Date.now()) / (365.25 * 24 * 3600 * 1000);
    expect(years).toBeGreaterThan(19.9);
    expect(years).toBeLessThan(20.1);
    expect(Date.parse(cert.validFrom)).toBeLessThan(Date.now());
  });

  it('gives every identity its own serial number and device ID', async () => {
    const a = new X509Certificate((await createIdentity()).certPem);
    const b = new X509Certificate((await createIdentity()).certPem);
    expect(a.serialNumber).not.toBe(b.serialNumber);
    expect(deviceIdOfCert(a.raw)).not.toBe(deviceIdOfCert(b.raw));
  });
});

describe('deviceIdOfCert', () => {
  it('gives the same canonical ID for PEM and DER', async () => {
    const { certPem } = await createIdentity();
    const id = deviceIdOfCert(certPem);
    expect(parseDeviceId(id)).toBe(id);
    expect(deviceIdOfCert(new X509Certificate(certPem).raw)).toBe(id);
  });

  it('refuses a PEM string that is not a certificate', () => {
    expect(() =>
      deviceIdOfCert('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n'),
    ).toThrow(LockstepError);
  });
});

/** Runs a mutual-TLS handshake on 127.0.0.1; each side reports the peer's device ID. */
async function handshake(
  server: Identity,
  client: Identity,
): Promise<{ seenByServer: string; seenByClient: string; protocol: string | null }> {
  const srv = tls.createServer({
    key: server.keyPem,
    cert: server.certPem,
    requestCert: true,
    rejectUnauthorized: false, // the device ID is pinned instead of trusting a CA
    minVersion: 'TLSv1.3',
  });
  const sockets: tls.TLSSocket[] = [];
  try {
    const seenByServer = new Promise<string>((resolve, reject) => {
      srv.once('secureConnection', (socket) => {
        sockets.push(socket);
        socket.on('error', () => {});
        resolve(deviceIdOfCert(socket.getPeerCertificate().raw));
      });
      srv.once('tlsClientError', reject);
    });
    seenByServer.catch(() => {}); // awaited below; avoid an unhandled rejection meanwhile
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', resolve);
    });
    const { port } = srv.address() as AddressInfo;
    let protocol: string | null = null;
    const seenByClient = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        key: client.keyPem,
        cert: client.certPem,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      });
      sockets.push(socket);
      socket.once('error', reject);
      socket.once('secureConnect', () => {
        protocol = socket.getProtocol();
        resolve(deviceIdOfCert(socket.getPeerCertificate().raw));
      });
    });
    return { seenByServer: await seenByServer, seenByClient, protocol };
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

describe('TLS with device identities', () => {
  it('completes a mutual handshake where each side computes the other device ID', async () => {
    const a = await createIdentity();
    const b = await createIdentity();
    const { seenByServer, seenByClient, protocol } = await handshake(a, b);
    expect(protocol).toBe('TLSv1.3');
    expect(seenByServer).toBe(deviceIdOfCert(b.certPem));
    expect(seenByClient).toBe(deviceIdOfCert(a.certPem));
  }, 10_000);
});
