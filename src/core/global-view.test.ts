import { describe, expect, it } from 'vitest';
import { globalEntry, type HeldRecord } from './global-view.js';
import type { FileRecord } from './record.js';

const A = 'AAAAAAA'.padEnd(56, 'A');
const B = 'BBBBBBB'.padEnd(56, 'B');
const C = 'CCCCCCC'.padEnd(56, 'C');

function file(version: Record<string, number>, over: Partial<FileRecord> = {}): FileRecord {
  return {
    path: 'docs/e.txt',
    type: 'file',
    size: 4,
    mtimeNs: 1_000_000_000n,
    mode: 0,
    chunks: [],
    target: '',
    version,
    deleted: false,
    sequence: 0,
    inode: 0,
    modifiedBy: Object.keys(version).at(-1) ?? '',
    ...over,
  };
}
const tomb = { deleted: true, size: 0 };
const held = (device: string, record: FileRecord): HeldRecord => ({ device, record });
/** Three devices' rows sharing one decoded version object, as the store hands them out. */
const shared = file({ AAAAAAA: 1 });

describe('globalEntry', () => {
  const cases: {
    name: string;
    rows: HeldRecord[];
    /** The shown record's size (to tell the records apart), or undefined for no entry. */
    size?: number;
    holders?: string[];
  }[] = [
    { name: 'no rows', rows: [] },
    { name: 'one live record', rows: [held(A, file({ AAAAAAA: 1 }))], size: 4, holders: [A] },
    { name: 'deleted everywhere', rows: [held(A, file({ AAAAAAA: 2 }, tomb))] },
    {
      name: 'a newer delete hides the file',
      rows: [held(A, file({ AAAAAAA: 1 })), held(B, file({ AAAAAAA: 1, BBBBBBB: 1 }, tomb))],
    },
    {
      name: 'equal versions: every device holds it, in row order',
      rows: [held(B, file({ AAAAAAA: 1 })), held(A, file({ AAAAAAA: 1 }))],
      size: 4,
      holders: [B, A],
    },
    {
      name: 'the same decoded version object',
      rows: [held(A, shared), held(B, shared), held(C, shared)],
      size: 4,
      holders: [A, B, C],
    },
    {
      name: 'a device behind does not hold it',
      rows: [held(A, file({ AAAAAAA: 1 })), held(B, file({ AAAAAAA: 2 }, { size: 9 }))],
      size: 9,
      holders: [B],
    },
    {
      name: 'a device ahead wins whatever the row order',
      rows: [held(A, file({ AAAAAAA: 2 }, { size: 9 })), held(B, file({ AAAAAAA: 1 }))],
      size: 9,
      holders: [A],
    },
    {
      name: 'concurrent edits: the newer mtime wins alone',
      rows: [
        held(A, file({ AAAAAAA: 1 }, { mtimeNs: 5n })),
        held(B, file({ BBBBBBB: 1 }, { size: 9, mtimeNs: 7n })),
      ],
      size: 9,
      holders: [B],
    },
    {
      name: 'concurrent edit and delete: the edit wins',
      rows: [
        held(A, file({ AAAAAAA: 2 }, { ...tomb, mtimeNs: 9n })),
        held(B, file({ AAAAAAA: 1, BBBBBBB: 1 }, { size: 9 })),
      ],
      size: 9,
      holders: [B],
    },
    {
      name: 'a deleted record at the same version holds nothing',
      rows: [held(A, file({ AAAAAAA: 1 })), held(B, file({ AAAAAAA: 1 }, tomb))],
      size: 4,
      holders: [A],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const e = globalEntry(c.rows);
      if (c.size === undefined) {
        expect(e).toBeUndefined();
        return;
      }
      expect(e?.record.size).toBe(c.size);
      expect(e?.holders).toEqual(c.holders);
    });
  }
});
