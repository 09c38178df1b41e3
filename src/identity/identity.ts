/**
 * A device's identity: an ECDSA P-256 key and a self-signed certificate. The
 * device ID is derived from the certificate (see core/device-id.ts); peers pin
 * it, so no certificate authority is involved.
 */
import { createHash, KeyObject, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { errorMessage, LockstepError } from '../base/errors.js';
import { formatDeviceId } from '../core/device-id.js';

/** How long a device certificate is valid. */
const VALID_YEARS = 20;
/** How far back a certificate's validity starts, to tolerate clock skew between devices. */
const BACKDATE_MS = 24 * 60 * 60 * 1000;
/** The signing algorithm: ECDSA on P-256 with SHA-256. */
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** The WebCrypto types @peculiar/x509 declares (from the DOM library, which this project does not load). */
type SelfSignedParams = Parameters<typeof X509.X509CertificateGenerator.createSelfSigned>;
type X509Crypto = NonNullable<SelfSignedParams[1]>;
type X509Keys = SelfSignedParams[0]['keys'];

/** A device's private key and certificate, both PEM. */
export interface Identity {
  /** The private key, PKCS#8 PEM. Keep it secret (file mode 0600). */
  readonly keyPem: string;
  /** The self-signed certificate, PEM. */
  readonly certPem: string;
}

/** Returns a random positive serial number of 16 bytes, in hex. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01; // positive and without a leading zero byte
  return bytes.toString('hex');
}

/**
 * Creates a new device identity: an ECDSA P-256 key and a self-signed X.509
 * certificate for it, valid for about 20 years from yesterday, with a random
 * serial number, usable for TLS as both server and client.
 *
 * @param commonName - the certificate's subject CN
 */
export async function createIdentity(commonName = 'lockstep'): Promise<Identity> {
  // Loaded only here (init): the certificate library and its reflection
  // polyfill add about 13 MB to a process, and a running device only reads
  // certificates, which Node does itself.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const crypto = webcrypto as unknown as X509Crypto;
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, [
    'sign',
    'verify',
  ])) as unknown as X509Keys;
  const now = Date.now();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + VALID_YEARS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: [{ CN: [commonName] }],
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      signingAlgorithm: ALGORITHM,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(
          [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
          false,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const keyPem = KeyObject.from(keys.privateKey as unknown as webcrypto.CryptoKey)
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
  return { keyPem, certPem: cert.toString('pem') + '\n' };
}

/**
 * Computes the device ID of a certificate: the SHA-256 of its DER bytes,
 * formatted by {@link formatDeviceId}.
 *
 * @param certPemOrDer - a PEM certificate (the first one is used), or DER
 *   bytes such as `tls.TLSSocket.getPeerCertificate().raw`
 * @throws LockstepError `IDENTITY_INVALID` if a PEM string is not a certificate
 */
export function deviceIdOfCert(certPemOrDer: string | Uint8Array): string {
  let der: Uint8Array;
  if (typeof certPemOrDer === 'string') {
    try {
      der = new X509Certificate(certPemOrDer).raw;
    } catch (err) {
      throw new LockstepError(
        'IDENTITY_INVALID',
        `Not a valid PEM certificate: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  } else {
    der = certPemOrDer;
  }
  return formatDeviceId(createHash('sha256').update(der).digest());
}
