/**
 * Every core: the engine's long operations are jobs of rounds of tasks (see the crate's `parallel`
 * module). The worker that serves the API drives a job; its pool of task workers (each with its own
 * engine instance) runs some of a round's tasks while the serving worker runs the others between
 * messages. No shared memory is needed, so this works on any page and in Node. Jobs split work into
 * fixed chunks and merge results in task order, so the result does not depend on the pool's size.
 */
import { OptimizerError } from './types.js';
import { spansItsBuffer } from './protocol.js';

/** A round of a job, as the wasm `Job.nextRound` gives it. */
export interface Round {
  stage: string;
  units: number[];
  /** Per task, its kind: tasks of one kind cost about the same per unit (absent: one kind). */
  kinds?: number[];
  tasks: Uint8Array[];
  /** New shared inputs; the job's input file comes without bytes (`input: true`): the caller has them. */
  resources: { id: number; bytes?: Uint8Array; input?: boolean }[];
}

/** The wasm `Job` methods the pool drives. */
export interface JobLike {
  /** The resource id of the job's input file, if it has one. */
  readonly inputId?: number;
  nextRound(portable: boolean): Round | null;
  runLocal(i: number): Uint8Array;
  accept(results: Uint8Array[]): void;
}

/** Messages to a task worker, and its replies. */
export type TaskMessage = { type: 'put'; id: number; bytes: Uint8Array } | { type: 'task'; seq: number; bytes: Uint8Array };
export type TaskReply =
  /** `ms`: the time the task worker spent running the task. */
  | { type: 'task-result'; seq: number; ok: true; bytes: Uint8Array; ms?: number }
  | { type: 'task-result'; seq: number; ok: false; error: { code: string; message: string }; fatal?: boolean };

/** A task worker as the pool sees it. */
export interface TaskPort {
  post(msg: TaskMessage, transfer: ArrayBuffer[]): void;
  terminate(): void;
}

/** Where a round's time went (for benchmarks: `info().lastJob`), in ms. */
export interface RoundTrace {
  stage: string;
  tasks: number;
  /** From asking the job for the round to its results accepted. */
  wallMs: number;
  /** The job's own serial work on the serving worker: making the round (and sending its shared
   * inputs), then merging its results. */
  nextMs: number;
  acceptMs: number;
  /** Per engine (the serving worker, then each task worker): tasks run, and the time running them. */
  engines: EngineTrace[];
}

/** The serving worker's serial work around a job's rounds (for benchmarks), in ms: making the job
 * (reading and checking its inputs), and finishing it (its report or model). */
export interface JobSerial {
  makeMs: number;
  finishMs: number;
}

/** One engine's share of a round: tasks run, the time running them, and each task (index in the
 * round, ms) in the order it ran. */
export interface EngineTrace {
  tasks: number;
  ms: number;
  each: [number, number][];
}

const engineTrace = (): EngineTrace => ({ tasks: 0, ms: 0, each: [] });

/** Counts task `i`, which took `ms`, in engine trace `e`. */
function record(e: EngineTrace, i: number, ms: number) {
  e.tasks++;
  e.ms += ms;
  e.each.push([i, ms]);
}

export type SpawnTaskWorker = (onReply: (msg: TaskReply) => void, onFailure: (e: Error) => void) => TaskPort;

interface Helper {
  port: TaskPort;
  /** Called with the replies to the tasks in flight, in the order they were posted. */
  pending: ((r: TaskReply) => void)[];
  failed: Error | null;
}

/**
 * Tasks a task worker holds at least, while the round has enough left: the one it runs and the
 * next, so that it does not wait for this worker (busy with a task of its own, deaf to messages)
 * to hand it more work. Once the round's tasks have been timed, [`RoundRun`] hands it more where
 * this worker's next task would outlast them.
 */
const DEPTH = 2;

/**
 * Lets messages from task workers arrive before the next local task runs, without `setTimeout(0)`,
 * which browsers clamp to 4 ms when nested (a tenth of a task). Node: `setImmediate` runs after
 * the loop's poll for messages. Browsers: a message to itself queues behind the task workers'
 * replies already received (the same task source).
 */
const yieldToEvents: () => Promise<void> = (() => {
  if (typeof setImmediate === 'function') return () => new Promise<void>((r) => setImmediate(r));
  if (typeof MessageChannel !== 'function') return () => new Promise<void>((r) => setTimeout(r, 0));
  const channel = new MessageChannel();
  const waiting: (() => void)[] = [];
  channel.port1.onmessage = () => waiting.shift()?.();
  return () =>
    new Promise<void>((r) => {
      waiting.push(r);
      channel.port2.postMessage(0);
    });
})();

/**
 * Milliseconds per unit of work of a round's finished tasks, per kind of task: how long the others
 * will take.
 */
class Rates {
  private readonly byKind = new Map<number, { ms: number; units: number }>();
  private readonly all = { ms: 0, units: 0 };

  constructor(private readonly round: Round) {}

  add(i: number, ms: number) {
    const kind = this.kind(i);
    const k = this.byKind.get(kind) ?? { ms: 0, units: 0 };
    this.byKind.set(kind, k);
    for (const s of [k, this.all]) {
      s.ms += ms;
      s.units += unitsOf(this.round, i);
    }
  }

  /** Task `i`'s expected time, from the finished tasks of its kind (else of any); `undefined`
   * before any task finished. */
  estimate(i: number): number | undefined {
    const s = this.byKind.get(this.kind(i)) ?? this.all;
    return s.units > 0 ? (s.ms / s.units) * unitsOf(this.round, i) : undefined;
  }

  private kind(i: number): number {
    return this.round.kinds?.[i] ?? 0;
  }
}

/** A task worker's tasks in flight in a round (when each was posted), and when its last finished
 * task ended, as far as this worker can tell: posted at, or when the one before ended, plus the
 * time the task worker reports. */
interface Flight {
  tasks: { i: number; at: number }[];
  endedAt: number;
}

/** When a task worker runs out of the work it holds; `undefined` without estimates yet. */
function freeAt(f: Flight, rates: Rates): number | undefined {
  let t = f.endedAt;
  for (const { i, at } of f.tasks) {
    const ms = rates.estimate(i);
    if (ms === undefined) return undefined;
    t = Math.max(t, at) + ms;
  }
  return t;
}

/** Runs `f`, counting it (and its time) in `into`; returns its result and its time in ms. */
function timed<T>(into: EngineTrace, i: number, f: () => T): [T, number] {
  const t = performance.now();
  const count = () => {
    const ms = performance.now() - t;
    record(into, i, ms);
    return ms;
  };
  let out: T;
  try {
    out = f();
  } catch (e) {
    count();
    throw e;
  }
  return [out, count()];
}

/** Task `i`'s work in `round`'s units (samples, for most rounds). */
function unitsOf(round: Round, i: number): number {
  return round.units[i] ?? 1;
}

export class Pool {
  private helpers: Helper[] = [];
  private seq = 1;
  /** The rounds of the last job driven. */
  lastJob: RoundTrace[] = [];
  /** The serial work around the last job's rounds. */
  lastJobSerial: JobSerial = { makeMs: 0, finishMs: 0 };

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
      const h: Helper = { port: null as unknown as TaskPort, pending: [], failed: null };
      h.port = this.spawn(
        (r) => h.pending.shift()?.(r),
        (e) => {
          h.failed = e;
          const crashed: TaskReply = { type: 'task-result', seq: 0, ok: false, error: { code: 'engine_crashed', message: e.message }, fatal: true };
          for (const f of h.pending.splice(0)) f(crashed);
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
    input?: Uint8Array,
  ): Promise<void> {
    const portable = this.size > 1;
    this.lastJob = [];
    // The input file goes to the task workers first: they take it in while this worker makes the
    // first round (and writes the models it sends).
    let early: number | undefined;
    if (portable && input && job.inputId !== undefined) {
      this.start();
      early = job.inputId;
      this.put([{ id: early, input: true }], input);
    }
    for (;;) {
      const t0 = performance.now();
      const round = job.nextRound(portable);
      if (!round) return;
      const trace: RoundTrace = { stage: round.stage, tasks: round.tasks.length, wallMs: 0, nextMs: 0, acceptMs: 0, engines: [] };
      this.lastJob.push(trace);
      const resources = round.resources.filter((r) => !(r.input && r.id === early));
      const results = portable
        ? await this.parallel(job, { ...round, resources }, progress, input, trace, t0)
        : await this.local(job, round, progress, trace, t0);
      const t1 = performance.now();
      job.accept(results);
      const t2 = performance.now();
      trace.acceptMs = t2 - t1;
      trace.wallMs = t2 - t0;
      afterRound?.();
    }
  }

  private async local(job: JobLike, round: Round, progress: (s: string, d: number, t: number) => void, trace: RoundTrace, t0: number) {
    const total = round.units.reduce((a, b) => a + b, 0);
    const results: Uint8Array[] = [];
    const mine = engineTrace();
    trace.engines = [mine];
    trace.nextMs = performance.now() - t0;
    let done = 0;
    for (let i = 0; i < round.tasks.length; i++) {
      results.push(timed(mine, i, () => job.runLocal(i))[0]);
      done += unitsOf(round, i);
      progress(round.stage, done, total);
      await yieldToEvents();
    }
    return results;
  }

  private parallel(
    job: JobLike,
    round: Round,
    progress: (s: string, d: number, t: number) => void,
    input: Uint8Array | undefined,
    trace: RoundTrace,
    t0: number,
  ): Promise<Uint8Array[]> {
    this.start();
    this.put(round.resources, input);
    trace.nextMs = performance.now() - t0;
    trace.engines = [engineTrace(), ...this.helpers.map(engineTrace)];
    return new Promise<Uint8Array[]>((resolve, reject) => {
      const run = new RoundRun(job, round, this.helpers, trace, {
        progress,
        resolve,
        reject,
        post: (h, bytes) => h.port.post({ type: 'task', seq: this.seq++, bytes }, []),
        depth: (left) => this.depth(left),
      });
      run.pump();
    });
  }

  /**
   * Sends a round's new shared inputs to every task worker: copies, the original to the last.
   * The job's input file is `input`, the caller's bytes (the engine has its own copy).
   */
  private put(resources: Round['resources'], input?: Uint8Array) {
    const all = resources.map(({ id, bytes }) => {
      const b = bytes ?? input;
      if (!b) throw new OptimizerError('internal', `the bytes of the job's input (resource ${id}) were not given`);
      return { id, bytes: b };
    });
    this.helpers.forEach((h, k) => {
      for (const r of all) {
        const bytes = k === this.helpers.length - 1 && spansItsBuffer(r.bytes) ? r.bytes : r.bytes.slice();
        h.port.post({ type: 'put', id: r.id, bytes }, [bytes.buffer as ArrayBuffer]);
      }
    });
  }

  /** How many tasks a task worker holds at least with `left` not handed out yet: one near the end
   * of a round, so the last tasks go to whichever engine is free first. */
  private depth(left: number): number {
    return left > this.size ? DEPTH : 1;
  }
}

/** What a [`RoundRun`] reports to, and asks of, its pool. */
interface RoundHooks {
  progress: (stage: string, done: number, total: number) => void;
  resolve: (results: Uint8Array[]) => void;
  reject: (e: unknown) => void;
  post: (h: Helper, bytes: Uint8Array) => void;
  depth: (left: number) => number;
}

/**
 * One round on the pool. Task workers take tasks from the front, this worker from the back: tasks
 * of one model sit together (a job lists them so), so each engine prepares fewer of a round's
 * models. This worker hears from the task workers only between its own tasks, so before each one
 * it hands them the tasks they will start before it ends (from the times of the finished tasks):
 * near the end of a round a task worker would otherwise sit idle until this worker's task ended.
 */
class RoundRun {
  private next = 0;
  private last: number;
  private finished = 0;
  private done = 0;
  private readonly total: number;
  private readonly results: Uint8Array[];
  private localQueued = false;
  private failed = false;
  private readonly rates: Rates;
  private readonly flights: Flight[];

  constructor(
    private readonly job: JobLike,
    private readonly round: Round,
    private readonly helpers: Helper[],
    private readonly trace: RoundTrace,
    private readonly hooks: RoundHooks,
  ) {
    this.last = round.tasks.length;
    this.total = round.units.reduce((a, b) => a + b, 0);
    this.results = new Array(round.tasks.length);
    this.rates = new Rates(round);
    const now = performance.now();
    this.flights = helpers.map(() => ({ tasks: [], endedAt: now }));
  }

  /** Hands out work: task workers up to their depth, and this worker's next task. */
  pump() {
    if (this.failed) return;
    for (const [k, h] of this.helpers.entries()) {
      while (!h.failed && this.next < this.last && h.pending.length < this.hooks.depth(this.last - this.next)) this.send(k);
    }
    if (this.next < this.last && !this.localQueued) {
      this.localQueued = true;
      void yieldToEvents().then(() => this.runLocal());
    }
  }

  private send(k: number) {
    const h = this.helpers[k];
    const f = this.flights[k];
    const i = this.next++;
    f.tasks.push({ i, at: performance.now() });
    h.pending.push((r) => {
      if (!r.ok) return this.fail(new OptimizerError(r.error.code as never, `a task worker failed: ${r.error.message}`));
      const sent = f.tasks.shift();
      const ms = r.ms ?? 0;
      f.endedAt = Math.max(f.endedAt, sent?.at ?? 0) + ms;
      this.rates.add(i, ms);
      record(this.trace.engines[k + 1], i, ms);
      this.finish(i, r.bytes);
    });
    this.hooks.post(h, this.round.tasks[i]);
  }

  /** Before this worker runs task `last - 1`: hands each task worker the tasks it is expected to
   * start before that one ends (leaving this one to this worker). */
  private topUp() {
    const mine = this.rates.estimate(this.last - 1);
    if (mine === undefined) return;
    const until = performance.now() + mine;
    for (const [k, h] of this.helpers.entries()) {
      for (;;) {
        const free = freeAt(this.flights[k], this.rates);
        if (h.failed || this.next >= this.last - 1 || free === undefined || free >= until) break;
        this.send(k);
      }
    }
  }

  private runLocal() {
    this.localQueued = false;
    if (this.failed || this.next >= this.last) return;
    this.topUp();
    const i = --this.last;
    try {
      const [bytes, ms] = timed(this.trace.engines[0], i, () => this.job.runLocal(i));
      this.rates.add(i, ms);
      this.finish(i, bytes);
    } catch (e) {
      this.fail(e);
    }
  }

  private finish(i: number, bytes: Uint8Array) {
    this.results[i] = bytes;
    this.finished++;
    this.done += unitsOf(this.round, i);
    this.hooks.progress(this.round.stage, this.done, this.total);
    if (this.finished === this.round.tasks.length) this.hooks.resolve(this.results);
    else this.pump();
  }

  private fail(e: unknown) {
    if (!this.failed) this.hooks.reject(e);
    this.failed = true;
  }
}
