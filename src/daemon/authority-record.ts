/**
 * This device's recorded choice of lock authority: read from its
 * configuration at start, changed only by meeting its cluster (an undecided
 * device adopts the cluster's choice), by an explicit move, or by an edit of
 * `config.json`, and written back to the configuration each time. The rules
 * are in core (`meetAuthority`); this holds the state and says what changed.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../base/log.js';
import type { AuthorityChoice } from '../core/lock-rules.js';

/** Options of an {@link AuthorityRecord}. */
export interface AuthorityRecordOptions {
  /** This device's full ID. */
  readonly self: string;
  /** The choice recorded in the configuration at start. */
  readonly initial: AuthorityChoice;
  /** Writes a new choice into the configuration (throws if it cannot). */
  save(choice: AuthorityChoice): void;
  readonly log: Logger;
  deviceName(id: string): string;
}

/** Events of an {@link AuthorityRecord}. */
export interface AuthorityRecordEvents {
  /** The recorded choice changed (and was written); `why` says how, for people. */
  changed: [choice: AuthorityChoice, why: string];
}

/** This device's choice of lock authority. */
export class AuthorityRecord extends EventEmitter<AuthorityRecordEvents> {
  private current: AuthorityChoice;

  constructor(private readonly o: AuthorityRecordOptions) {
    super();
    this.current = o.initial;
  }

  /** The recorded choice. */
  get choice(): AuthorityChoice {
    return this.current;
  }

  /** Whether a choice is recorded. */
  get decided(): boolean {
    return this.current.device !== undefined;
  }

  /** The device that grants locks now: the recorded one, else (undecided) this device. */
  device(): string {
    return this.current.device ?? this.o.self;
  }

  /**
   * Records `next`, writing it into the configuration first: if that fails,
   * nothing changes (the error is logged and false returned).
   */
  record(next: AuthorityChoice, why: string): boolean {
    if (next.device === this.current.device && next.epoch === this.current.epoch) return true;
    try {
      this.o.save(next);
    } catch (err) {
      this.o.log.error(
        { err: err instanceof Error ? err.message : String(err) },
        `could not record the lock authority (${why}); keeping ${this.describe(this.current)}`,
      );
      return false;
    }
    const before = this.current;
    this.current = next;
    this.o.log.info(
      { authority: next.device, epoch: next.epoch, was: before.device },
      `lock authority: ${this.describe(next)} (${why})`,
    );
    this.emit('changed', next, why);
    return true;
  }

  /** Takes the choice found in an edited configuration (not written back). */
  edited(next: AuthorityChoice): void {
    if (next.device === this.current.device && next.epoch === this.current.epoch) return;
    this.current = next;
    this.o.log.info(
      { authority: next.device, epoch: next.epoch },
      `lock authority: ${this.describe(next)} (configuration edited)`,
    );
    this.emit('changed', next, 'configuration edited');
  }

  private describe(c: AuthorityChoice): string {
    return c.device === undefined ? 'not decided yet' : this.o.deviceName(c.device);
  }
}
