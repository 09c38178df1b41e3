/**
 * Enforcement's file operations ({@link LockedFiles}) done by the folder
 * writer: a locked file's write bits, and a change to a locked file moved
 * aside as a conflict copy. The writer never follows a symlink: parents are
 * checked to be real directories inside the folder, a file's mode is changed
 * through a descriptor opened with O_NOFOLLOW, and where a file is found or
 * lands is checked against its identity.
 */
import type { FolderWriter } from '../folder/writer.js';
import type { LockedFiles } from '../locks/enforcement.js';

/**
 * The lock file operations through `writer`.
 *
 * @param localShort - this device's short ID, for conflict-copy names
 * @param now - the time in ms, for conflict-copy names
 */
export function folderLockFiles(
  writer: Pick<FolderWriter, 'setReadOnly' | 'setAsideLocked'>,
  localShort: string,
  now: () => number = Date.now,
): LockedFiles {
  return {
    setReadOnly: (path, on) => writer.setReadOnly(path, on),
    setAside: (path) => writer.setAsideLocked(path, BigInt(now()) * 1_000_000n, localShort),
  };
}
