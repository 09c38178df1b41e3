/**
 * The small page `lockstep open --browser` hands to the browser instead of
 * the sign-in address itself: the address holds a one-time code, and a
 * process's arguments can be read by every user of the machine. The page
 * sits in a directory only this user may enter (mode 0700), is readable only
 * by this user (0600), and sends the browser on to the address. Earlier ones
 * are removed at the next run.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { errorMessage, LockstepError } from '../base/errors.js';

/** A page older than this is removed at the next run (the browser has read it long before). */
const KEEP_MS = 60_000;
/** The name of a page this module wrote. */
const PAGE_NAME = /^signin-[0-9a-f]{16}\.html$/;

/**
 * The directory for the pages: `$XDG_RUNTIME_DIR/lockstep` (private to the
 * user, gone at logout), else `$XDG_CACHE_HOME/lockstep/signin` (else
 * `~/.cache/lockstep/signin`).
 */
export function signinPageDir(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && isAbsolute(runtime) && fs.existsSync(runtime)) {
    return join(runtime, 'lockstep');
  }
  const cache = env.XDG_CACHE_HOME;
  const base = cache !== undefined && isAbsolute(cache) ? cache : join(homedir(), '.cache');
  return join(base, 'lockstep', 'signin');
}

/**
 * Creates `dir` if needed and makes sure only this user can enter it: a real
 * directory (not a link), owned by this user, mode 0700.
 *
 * @throws LockstepError `HOME_INVALID` naming the directory if it is not
 */
function privateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(dir);
    if (!st.isDirectory()) throw new Error('it is not a directory');
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) throw new Error(`it belongs to user ${st.uid}`);
    if ((st.mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
  } catch (err) {
    throw new LockstepError(
      'HOME_INVALID',
      `Cannot use ${dir} for the sign-in page: ${errorMessage(err)}; open the address yourself`,
      { cause: err },
    );
  }
}

/** Removes this module's pages in `dir` older than {@link KEEP_MS}; best effort. */
function removeOld(dir: string, now: number): void {
  for (const name of fs.readdirSync(dir)) {
    if (!PAGE_NAME.test(name)) continue;
    const file = join(dir, name);
    try {
      if (now - fs.lstatSync(file).mtimeMs > KEEP_MS) fs.rmSync(file, { force: true });
    } catch {
      // gone already
    }
  }
}

/** `s` made safe inside an HTML attribute or text. */
function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page's HTML: it sends the browser on to `url` at once, with a link as a fallback. */
export function redirectHtml(url: string): string {
  const u = escapeHtml(url);
  return `<!doctype html>
<html><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0; url=${u}">
<title>Lockstep sign-in</title></head>
<body><p>Opening the Lockstep web page&hellip; <a href="${u}">Continue</a></p></body></html>
`;
}

/**
 * Writes a page that sends the browser on to `url`, in
 * {@link signinPageDir}, and removes earlier ones.
 *
 * @returns the page's path (what the browser is given)
 * @throws LockstepError `HOME_INVALID` if the directory is not private or
 *   the page cannot be written
 */
export function writeSigninPage(url: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = signinPageDir(env);
  privateDir(dir);
  removeOld(dir, Date.now());
  const file = join(dir, `signin-${randomBytes(8).toString('hex')}.html`);
  try {
    // O_EXCL: never through a link someone left there; 0600 whatever the umask.
    const fd = fs.openSync(file, 'wx', 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeFileSync(fd, redirectHtml(url));
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw new LockstepError(
      'HOME_INVALID',
      `Cannot write the sign-in page ${file}: ${errorMessage(err)}; open the address yourself`,
      { cause: err },
    );
  }
  return file;
}
