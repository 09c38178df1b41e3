/**
 * The `Host` names the client API answers for. A web page elsewhere can point
 * its own name at 127.0.0.1 (DNS rebinding) and then talk to the device as
 * if it were the device's own page; the browser still sends that foreign
 * name in `Host`, so the device refuses any name it is not reached by:
 * the loopback names, the listen address (when it is one address), and the
 * names configured in `apiHosts`.
 */

/** The names every device answers for, whatever the port: this machine. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/** A `Host` header's shape: a name or IPv4 address, or an IPv6 address in brackets; a port maybe. */
const HOST_HEADER = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::\d{1,5})?$/;

/**
 * The canonical form of a host name or address, without its port: lower
 * case, no trailing dot, IPv4 and IPv6 addresses as URLs write them (IPv6 in
 * brackets). Undefined for something that is no host.
 */
export function canonicalHost(hostAndPort: string): string | undefined {
  if (!HOST_HEADER.test(hostAndPort)) return undefined;
  let name: string;
  try {
    name = new URL(`http://${hostAndPort}/`).hostname;
  } catch {
    return undefined;
  }
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** The canonical form of a configured name or address (an IPv6 one with or without brackets). */
function canonicalName(name: string): string | undefined {
  const bracketed = name.includes(':') && !name.startsWith('[') ? `[${name}]` : name;
  return canonicalHost(bracketed);
}

/**
 * The names the API answers for: the loopback names, `listenHost` unless it
 * is a wildcard (`0.0.0.0`, `::`), and `configured` (`apiHosts`).
 */
export function allowedHosts(listenHost: string, configured: readonly string[] = []): string[] {
  const out = new Set(LOOPBACK_HOSTS);
  if (listenHost !== '0.0.0.0' && listenHost !== '::') {
    const h = canonicalName(listenHost);
    if (h !== undefined) out.add(h);
  }
  for (const name of configured) {
    const h = canonicalName(name);
    if (h !== undefined) out.add(h);
  }
  return [...out];
}

/**
 * Checks a request's `Host` header against `allowed` (canonical names).
 *
 * @returns undefined when the API answers for it, else why not (a sentence
 *   saying how to allow the name)
 */
export function hostProblem(
  header: string | undefined,
  allowed: ReadonlySet<string>,
): string | undefined {
  if (header === undefined || header === '') {
    return 'This request has no Host header: send the name the device is reached by, e.g. Host: 127.0.0.1';
  }
  const shown = JSON.stringify(header.slice(0, 100));
  const name = canonicalHost(header);
  if (name === undefined) return `The Host header ${shown} is not a host name or address`;
  if (allowed.has(name)) return undefined;
  return (
    `This device does not answer for the host ${shown}. To reach it by this name, add ` +
    `${JSON.stringify(name.replace(/^\[(.*)\]$/, '$1'))} to "apiHosts" in the device's config.json ` +
    'and restart it; or reach it as 127.0.0.1 on this machine'
  );
}
