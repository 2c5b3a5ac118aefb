/**
 * Every core: the engine's long operations are jobs of rounds of tasks (see the crate's `parallel`
 * module). The worker that serves the API drives a job; its pool of task workers (each with its own
 * engine instance) runs some of a round's tasks while the serving worker runs the others between
 * messages. No shared memory is needed, so this works on any page and in Node. Jobs split work into
 * fixed chunks and merge results in task order, so the result does not depend on the pool's size.
 */
import { OptimizerError } from './types.js';

/** A round of a job, as the wasm `Job.nextRound` gives it. */
export interface Round {
  stage: string;
  units: number[];
  tasks: Uint8Array[];
  resources: { id: number; bytes: Uint8Array }[];
}

/** The wasm `Job` methods the pool drives. */
export interface JobLike {
  nextRound(portable: boolean): Round | null;
  runLocal(i: number): Uint8Array;
  accept(results: Uint8Array[]): void;
}

/** Messages to a task worker, and its replies. */
export type TaskMessage = { type: 'put'; id: number; bytes: Uint8Array } | { type: 'task'; seq: number; bytes: Uint8Array };
export type TaskReply =
  | { type: 'task-result'; seq: number; ok: true; bytes: Uint8Array }
  | { type: 'task-result'; seq: number; ok: false; error: { code: string; message: string }; fatal?: boolean };

/** A task worker as the pool sees it. */
export interface TaskPort {
  post(msg: TaskMessage, transfer: ArrayBuffer[]): void;
  terminate(): void;
}

export type SpawnTaskWorker = (onReply: (msg: TaskReply) => void, onFailure: (e: Error) => void) => TaskPort;

interface Helper {
  port: TaskPort;
  /** Called with the reply to the task in flight. */
  pending: ((r: TaskReply) => void) | null;
  failed: Error | null;
}

/** Lets messages from task workers arrive before the next local task runs. */
const yieldToEvents = () => new Promise<void>((r) => setTimeout(r, 0));

export class Pool {
  private helpers: Helper[] = [];
  private seq = 1;

  /** `threads` in all: this worker and `threads - 1` task workers (started on first use). */
  constructor(
    private readonly spawn: SpawnTaskWorker | null,
    private readonly threads: number,
  ) {}

  /** How many engines work on a round. */
  get size(): number {
    return this.spawn ? this.threads : 1;
  }

  private start() {
    while (this.spawn && this.helpers.length < this.threads - 1) {
      const h: Helper = { port: null as unknown as TaskPort, pending: null, failed: null };
      h.port = this.spawn(
        (r) => {
          const f = h.pending;
          h.pending = null;
          f?.(r);
        },
        (e) => {
          h.failed = e;
          const f = h.pending;
          h.pending = null;
          f?.({ type: 'task-result', seq: 0, ok: false, error: { code: 'engine_crashed', message: e.message }, fatal: true });
        },
      );
      this.helpers.push(h);
    }
  }

  /** Stops the task workers (a new round starts fresh ones). */
  terminate() {
    for (const h of this.helpers) h.port.terminate();
    this.helpers = [];
  }

  /**
   * Runs `job` to its end. `progress` gets each round's stage and the work done in it;
   * `afterRound` runs after every round (training reports its figures, checks for a stop).
   */
  async drive(
    job: JobLike,
    progress: (stage: string, done: number, total: number) => void,
    afterRound?: () => void,
  ): Promise<void> {
    const portable = this.size > 1;
    for (;;) {
      const round = job.nextRound(portable);
      if (!round) return;
      const results = portable ? await this.parallel(job, round, progress) : await this.local(job, round, progress);
      job.accept(results);
      afterRound?.();
    }
  }

  private async local(job: JobLike, round: Round, progress: (s: string, d: number, t: number) => void) {
    const total = round.units.reduce((a, b) => a + b, 0);
    const results: Uint8Array[] = [];
    let done = 0;
    for (let i = 0; i < round.tasks.length; i++) {
      results.push(job.runLocal(i));
      done += round.units[i] ?? 1;
      progress(round.stage, done, total);
      await yieldToEvents();
    }
    return results;
  }

  private parallel(job: JobLike, round: Round, progress: (s: string, d: number, t: number) => void): Promise<Uint8Array[]> {
    this.start();
    for (const h of this.helpers) {
      for (const r of round.resources) {
        const bytes = r.bytes.slice();
        h.port.post({ type: 'put', id: r.id, bytes }, [bytes.buffer as ArrayBuffer]);
      }
    }
    const n = round.tasks.length;
    const total = round.units.reduce((a, b) => a + b, 0);
    const results: Uint8Array[] = new Array(n);
    let next = 0;
    let finished = 0;
    let done = 0;
    let localQueued = false;
    return new Promise<Uint8Array[]>((resolve, reject) => {
      let failed = false;
      const fail = (e: unknown) => {
        if (!failed) reject(e);
        failed = true;
      };
      const finish = (i: number, bytes: Uint8Array) => {
        results[i] = bytes;
        finished++;
        done += round.units[i] ?? 1;
        progress(round.stage, done, total);
        if (finished === n) resolve(results);
        else pump();
      };
      const pump = () => {
        if (failed) return;
        for (const h of this.helpers) {
          if (h.pending || h.failed || next >= n) continue;
          const i = next++;
          const seq = this.seq++;
          h.pending = (r) => {
            if (r.ok) finish(i, r.bytes);
            else fail(new OptimizerError(r.error.code as never, `a task worker failed: ${r.error.message}`));
          };
          h.port.post({ type: 'task', seq, bytes: round.tasks[i] }, []);
        }
        if (next < n && !localQueued) {
          localQueued = true;
          setTimeout(() => {
            localQueued = false;
            if (failed || next >= n) return;
            const i = next++;
            try {
              finish(i, job.runLocal(i));
            } catch (e) {
              fail(e);
            }
          }, 0);
        }
      };
      pump();
    });
  }
}
