/**
 * Runs the numbered `.sql` migrations in `migrations/` that the database has
 * not seen yet, each in its own transaction, and records the schema version in
 * `PRAGMA user_version`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { LockstepError } from '../base/errors.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** A migration file: `NNN-description.sql` produces schema version NNN. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Lists the migrations shipped with this build, in order. */
export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.sql'))
    .map((name) => {
      const m = /^(\d+)-.+\.sql$/.exec(name);
      if (!m) throw new Error(`Migration file name must look like 001-name.sql, got ${name}`);
      return { version: Number(m[1]), name, sql: readFileSync(`${dir}/${name}`, 'utf8') };
    })
    .sort((a, b) => a.version - b.version);
}

/**
 * Brings `db` up to the newest schema. Refuses a database whose schema is
 * newer than this build knows (written by a later Lockstep).
 *
 * @returns the schema version after migrating.
 */
export function migrate(db: Database.Database, migrations = listMigrations()): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  const newest = migrations.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new LockstepError(
      'INDEX_INVALID',
      `Index database has schema version ${current}, newer than this Lockstep knows (${newest}); upgrade Lockstep`,
    );
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return Math.max(current, newest);
}
