/**
 * Ownership of what must be undone: a listener added to another object's
 * events, a timer, a file watcher. What creates one adds its undo to a
 * {@link Disposables} it owns, and disposing the owner undoes them all,
 * newest first (VS Code's DisposableStore, in small).
 */

/** Something that can be undone once. */
export interface Disposable {
  dispose(): void;
}

/** The undos a component owns. */
export class Disposables implements Disposable {
  private undo: (() => void)[] = [];
  private disposed = false;

  /** Takes ownership of `d` (or an undo function); if already disposed, undoes it at once. */
  add(d: Disposable | (() => void)): void {
    const fn = typeof d === 'function' ? d : () => d.dispose();
    if (this.disposed) fn();
    else this.undo.push(fn);
  }

  /**
   * Adds `fn` as a listener of `event` on `emitter` and owns its removal.
   * Works with any emitter with `on`/`off` (Node's EventEmitter).
   */
  on<A extends unknown[]>(
    emitter: {
      on(event: string, fn: (...args: A) => void): unknown;
      off(event: string, fn: (...args: A) => void): unknown;
    },
    event: string,
    fn: (...args: A) => void,
  ): void {
    emitter.on(event, fn);
    this.add(() => emitter.off(event, fn));
  }

  /** Whether {@link dispose} ran. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Undoes everything owned, newest first; an undo that throws does not stop the rest. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const errors: unknown[] = [];
    for (const fn of this.undo.reverse()) {
      try {
        fn();
      } catch (err) {
        errors.push(err);
      }
    }
    this.undo = [];
    if (errors.length > 0) throw new AggregateError(errors, 'some resources could not be released');
  }
}
