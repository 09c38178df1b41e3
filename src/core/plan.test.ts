import { describe, expect, it } from 'vitest';
import { conflictName, planPath, winner, winsConflict, type Candidate } from './plan.js';
import type { FileRecord } from './record.js';

const H1 = '1'.repeat(64);
const H2 = '2'.repeat(64);

function file(version: Record<string, number>, over: Partial<FileRecord> = {}): FileRecord {
  return {
    path: 'docs/e.txt',
    type: 'file',
    size: 4,
    mtimeNs: 1_000_000_000n,
    mode: 0o644,
    chunks: [{ offset: 0, length: 4, hash: H1 }],
    target: '',
    version,
    deleted: false,
    sequence: 1,
    inode: 0,
    modifiedBy: Object.keys(version).at(-1) ?? '',
    ...over,
  };
}
const other = { chunks: [{ offset: 0, length: 4, hash: H2 }] };
const tomb = { deleted: true, size: 0, chunks: [] };
const dir = { type: 'directory' as const, size: 0, chunks: [] };
const link = { type: 'symlink' as const, size: 1, chunks: [], target: 'x' };
const remote = (device: string, record: FileRecord): Candidate => ({ device, record });

describe('planPath', () => {
  const cases: {
    name: string;
    local: FileRecord | undefined;
    remotes: Candidate[];
    kind: string;
    version?: Record<string, number>;
    conflict?: boolean;
    sources?: string[];
  }[] = [
    { name: 'nothing known', local: undefined, remotes: [], kind: 'none' },
    {
      name: 'new remote file',
      local: undefined,
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }))],
      kind: 'pull',
      version: { BBBBBBB: 1 },
      sources: ['BBBBBBB'],
    },
    {
      name: 'new remote directory',
      local: undefined,
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }, dir))],
      kind: 'mkdir',
    },
    {
      name: 'new remote symlink',
      local: undefined,
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }, link))],
      kind: 'symlink',
    },
    {
      name: 'remote tombstone for a path never seen',
      local: undefined,
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 2 }, tomb))],
      kind: 'tombstone',
    },
    {
      name: 'equal versions',
      local: file({ AAAAAAA: 1 }),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 1 }))],
      kind: 'none',
    },
    {
      name: 'local is newer',
      local: file({ AAAAAAA: 2 }),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 1 }, other))],
      kind: 'none',
    },
    {
      name: 'remote edit dominates',
      local: file({ AAAAAAA: 1 }),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 1, BBBBBBB: 1 }, other))],
      kind: 'pull',
      version: { AAAAAAA: 1, BBBBBBB: 1 },
    },
    {
      name: 'remote delete dominates',
      local: file({ AAAAAAA: 1 }),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 1, BBBBBBB: 1 }, tomb))],
      kind: 'delete',
    },
    {
      name: 'stale remote copy never resurrects a delete',
      local: file({ AAAAAAA: 2 }, tomb),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 1 }))],
      kind: 'none',
    },
    {
      name: 'dominating delete of something already deleted',
      local: file({ AAAAAAA: 2 }, tomb),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 2, BBBBBBB: 1 }, tomb))],
      kind: 'version',
    },
    {
      name: 'only the executable bit changed',
      local: file({ AAAAAAA: 1 }),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 1, BBBBBBB: 1 }, { mode: 0o755 }))],
      kind: 'chmod',
    },
    {
      name: 'concurrent, identical content: merge silently',
      local: file({ AAAAAAA: 1 }),
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }))],
      kind: 'version',
      version: { AAAAAAA: 1, BBBBBBB: 1 },
    },
    {
      name: 'concurrent, remote newer: local kept as conflict copy',
      local: file({ AAAAAAA: 1 }),
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }, { ...other, mtimeNs: 2_000_000_000n }))],
      kind: 'pull',
      version: { AAAAAAA: 1, BBBBBBB: 1 },
      conflict: true,
    },
    {
      name: 'concurrent, local newer: local wins, nothing to do',
      local: file({ AAAAAAA: 1 }, { mtimeNs: 3_000_000_000n }),
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }, { ...other, mtimeNs: 2_000_000_000n }))],
      kind: 'none',
    },
    {
      name: 'concurrent, same mtime: larger device ID wins (remote)',
      local: file({ AAAAAAA: 1 }),
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }, other))],
      kind: 'pull',
      conflict: true,
    },
    {
      name: 'concurrent, same mtime: larger device ID wins (local)',
      local: file({ CCCCCCC: 1 }),
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }, other))],
      kind: 'none',
    },
    {
      name: 'edit beats a concurrent remote delete',
      local: file({ AAAAAAA: 2 }),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 1, BBBBBBB: 1 }, tomb))],
      kind: 'none',
    },
    {
      name: 'remote edit beats a concurrent local delete, without a conflict copy',
      local: file({ AAAAAAA: 2 }, tomb),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 1, BBBBBBB: 1 }, other))],
      kind: 'pull',
      version: { AAAAAAA: 2, BBBBBBB: 1 },
    },
    {
      name: 'concurrent deletes merge',
      local: file({ AAAAAAA: 1 }, tomb),
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }, tomb))],
      kind: 'version',
    },
    {
      name: 'concurrent, remote under a later lock grant: wins over a newer local mtime',
      local: file({ AAAAAAA: 1 }, { mtimeNs: 9_000_000_000n, token: 3 }),
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }, { ...other, token: 4 }))],
      kind: 'pull',
      conflict: true,
    },
    {
      name: 'concurrent, local under a later lock grant: local wins over a newer remote mtime',
      local: file({ AAAAAAA: 1 }, { token: 4 }),
      remotes: [
        remote('BBBBBBB', file({ BBBBBBB: 1 }, { ...other, mtimeNs: 9_000_000_000n, token: 3 })),
      ],
      kind: 'none',
    },
    {
      name: 'concurrent, local written under a lock, remote without one (newer): local wins',
      local: file({ AAAAAAA: 1 }, { token: 1 }),
      remotes: [remote('BBBBBBB', file({ BBBBBBB: 1 }, { ...other, mtimeNs: 9_000_000_000n }))],
      kind: 'none',
    },
    {
      name: 'an older token that dominates still wins: it is a later edit, not a conflict',
      local: file({ AAAAAAA: 1 }, { token: 4 }),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 1, BBBBBBB: 1 }, { ...other, token: 3 }))],
      kind: 'pull',
    },
    {
      name: 'a delete under a later grant does not beat a concurrent edit (nothing is lost)',
      local: file({ AAAAAAA: 2 }, { token: 3 }),
      remotes: [remote('BBBBBBB', file({ AAAAAAA: 1, BBBBBBB: 1 }, { ...tomb, token: 4 }))],
      kind: 'none',
    },
    {
      name: 'three devices: the dominating record wins over an older one',
      local: file({ AAAAAAA: 1 }),
      remotes: [
        remote('BBBBBBB', file({ AAAAAAA: 1 })),
        remote('CCCCCCC', file({ AAAAAAA: 1, CCCCCCC: 1 }, other)),
      ],
      kind: 'pull',
      sources: ['CCCCCCC'],
    },
    {
      name: 'sources are every device with the winning content',
      local: undefined,
      remotes: [
        remote('BBBBBBB', file({ BBBBBBB: 1 })),
        remote('CCCCCCC', file({ BBBBBBB: 1 })),
        remote('DDDDDDD', file({ BBBBBBB: 1 }, tomb)),
      ],
      kind: 'pull',
      sources: ['BBBBBBB', 'CCCCCCC'],
    },
  ];
  it.each(cases)('$name', (c) => {
    const a = planPath(c.local, c.remotes);
    expect(a.kind).toBe(c.kind);
    if (a.kind === 'none') return;
    if (c.version) expect(a.version).toEqual(c.version);
    if (c.sources) expect(a.sources).toEqual(c.sources);
    expect(a.conflictCopy !== undefined).toBe(c.conflict ?? false);
  });

  it('names the conflict copy after the losing version', () => {
    const a = planPath(file({ AAAAAAA: 1 }, { mtimeNs: 1_795_544_620_000_000_000n }), [
      remote('BBBBBBB', file({ BBBBBBB: 1 }, { ...other, mtimeNs: 1_795_544_700_000_000_000n })),
    ]);
    expect(a.kind !== 'none' && a.conflictCopy).toBe('docs/e.conflict-20261124-182340-AAAAAAA.txt');
  });
});

describe('winner', () => {
  it('is the same whatever the order of the records', () => {
    const rs = [
      file({ AAAAAAA: 1 }),
      file({ BBBBBBB: 1 }, other),
      file({ AAAAAAA: 1, CCCCCCC: 1 }, { mtimeNs: 5n }),
    ];
    const perms = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    const winners = perms.map((p) => winner(p.map((i) => rs[i] as FileRecord)));
    for (const w of winners) expect(w).toBe(winners[0]);
  });

  it('prefers the later lock grant, whatever the order and the mtimes', () => {
    const stale = file({ AAAAAAA: 1, BBBBBBB: 1 }, { mtimeNs: 9_000_000_000n, token: 1 });
    const current = file({ AAAAAAA: 1, CCCCCCC: 1 }, { ...other, token: 2 });
    const unlocked = file({ AAAAAAA: 1, DDDDDDD: 1 }, { mtimeNs: 8_000_000_000n });
    expect(winner([stale, current, unlocked])).toBe(current);
    expect(winner([unlocked, current, stale])).toBe(current);
    expect(winner([stale, unlocked])).toBe(stale);
  });

  it('prefers an edit to a delete', () => {
    expect(winsConflict(file({ A: 1 }), file({ B: 1 }, { ...tomb, mtimeNs: 9n ** 20n }))).toBe(
      true,
    );
  });
});

describe('conflictName', () => {
  it.each([
    ['e.txt', 'e.conflict-20261124-180340-B7XKQ2M.txt'],
    ['a/b/Makefile', 'a/b/Makefile.conflict-20261124-180340-B7XKQ2M'],
    ['.bashrc', '.bashrc.conflict-20261124-180340-B7XKQ2M'],
    ['x.tar.gz', 'x.tar.conflict-20261124-180340-B7XKQ2M.gz'],
  ])('%s', (p, want) => {
    expect(conflictName(p, 1_795_543_420_000_000_000n, 'B7XKQ2M')).toBe(want);
  });
});
