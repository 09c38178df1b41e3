/**
 * The web page's files (built by Vite into `dist/web`), served on the client
 * API listener without authentication: they hold no data; every data call
 * the page makes needs a token. Hashed assets are cached for good, the page
 * itself is revalidated each time.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';

/** Content types of the files a Vite build makes. */
const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** Headers every page file is sent with. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/** One file of the page, read into memory at start. */
export interface PageFile {
  readonly body: Buffer;
  readonly type: string;
  readonly cacheControl: string;
}

/**
 * Reads the built page below `root` into memory, by URL path (`/`,
 * `/assets/index-abc123.js`). Undefined when the page is not built.
 */
export function loadPage(root: string): Map<string, PageFile> | undefined {
  let files: string[];
  try {
    if (!statSync(join(root, 'index.html')).isFile()) return undefined;
    files = readdirSync(root, { recursive: true, encoding: 'utf8' });
  } catch {
    return undefined;
  }
  const out = new Map<string, PageFile>();
  for (const f of files) {
    const abs = join(root, f);
    if (!statSync(abs).isFile()) continue;
    const rel = relative(root, abs).split(sep).join('/');
    const type = TYPES[extname(rel)] ?? 'application/octet-stream';
    // Vite names assets by content hash: they never change under one name.
    const cacheControl = rel.startsWith('assets/')
      ? 'public, max-age=31536000, immutable'
      : 'no-cache';
    out.set(rel === 'index.html' ? '/' : `/${rel}`, {
      body: readFileSync(abs),
      type,
      cacheControl,
    });
  }
  return out;
}
