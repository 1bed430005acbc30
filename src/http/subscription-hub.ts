// Live pushes for /ws subscriptions. A topic is one set of parameters (for the
// `pool` kind: poolId, percentiles, method, intervalMs); every subscriber with
// the same parameters shares it, so 1000 subscribers of a pool cost one
// computation per interval. A topic pushes when its pool changed, at most once
// per interval, with the state at push time (latest wins).
//
// Why not uWS's own publish(): uWS silently skips a subscriber whose
// backpressure is over its limit, and that subscriber then never learns the
// latest state if the pool stops changing. Here each subscriber that is over
// the push limit keeps only the newest message, sent when its socket drains.
// Other topic kinds (import progress, ...) register a parser with registerKind
// and call `changed(name)` when their state moves.

import type { QuantileEngine } from '../core/engine.js';
import { invalidRequest } from '../core/errors.js';
import { encodePoolPush, parsePoolTopic } from '../protocol/ws-messages.js';

/** What the hub needs of a socket (a uWS WebSocket satisfies it). */
export interface PushTarget {
  send(message: string): number;
  getBufferedAmount(): number;
}

export interface TopicSpec {
  /** Equal specs must give equal names. */
  name: string;
  intervalMs: number;
  /** Pools whose changes make this topic due (empty for non-pool topics). */
  poolIds: readonly number[];
  /** The push message for the current state. */
  render(): string;
}

export type TopicParser = (params: Record<string, unknown>) => TopicSpec;

interface Subscriber {
  target: PushTarget;
  topic: Topic;
  /** The newest push this subscriber could not take yet (its socket was over the push limit). */
  pending: string | null;
}

interface Topic {
  spec: TopicSpec;
  subscribers: Set<Subscriber>;
  lastPushAt: number;
  dirty: boolean;
  timer: NodeJS.Timeout | null;
}

export interface HubOptions {
  /** A subscriber whose socket holds more unsent bytes than this skips pushes (keeping the newest). */
  pushLimitBytes: number;
}

export interface HubStats {
  topics: number;
  subscribers: number;
  pushes: number;
  skipped: number;
}

export class SubscriptionHub {
  private readonly kinds = new Map<string, TopicParser>();
  private readonly topics = new Map<string, Topic>();
  private readonly byPool = new Map<number, Set<Topic>>();
  private readonly bySocket = new Map<PushTarget, Map<string, Subscriber>>();
  private pushes = 0;
  private skipped = 0;

  constructor(
    engine: QuantileEngine,
    private readonly options: HubOptions,
  ) {
    this.registerKind('pool', (params) => {
      const t = parsePoolTopic(params);
      return {
        name: t.name,
        intervalMs: t.intervalMs,
        poolIds: [t.poolId],
        render: () => {
          const count = engine.countOf(t.poolId);
          if (count === undefined) return encodePoolPush(t.name, t.poolId, 0, null);
          return encodePoolPush(t.name, t.poolId, count, engine.quantiles(t.poolId, t.percentiles, t.method));
        },
      };
    });
  }

  registerKind(kind: string, parser: TopicParser): void {
    this.kinds.set(kind, parser);
  }

  /** Parses the parameters (throws invalid_request) and returns the spec without subscribing. */
  parse(kind: string, params: Record<string, unknown>): TopicSpec {
    const parser = this.kinds.get(kind);
    if (parser === undefined)
      throw invalidRequest(
        'topic',
        `Unknown topic kind ${JSON.stringify(kind.slice(0, 40))}; known: ${[...this.kinds.keys()].join(', ')}.`,
      );
    return parser(params);
  }

  /** Subscribes `target` (idempotent) and sends it the current state at once. */
  subscribe(target: PushTarget, spec: TopicSpec): void {
    let topic = this.topics.get(spec.name);
    if (topic === undefined) {
      topic = { spec, subscribers: new Set(), lastPushAt: 0, dirty: false, timer: null };
      this.topics.set(spec.name, topic);
      for (const poolId of spec.poolIds) {
        let set = this.byPool.get(poolId);
        if (set === undefined) this.byPool.set(poolId, (set = new Set()));
        set.add(topic);
      }
    }
    let mine = this.bySocket.get(target);
    if (mine === undefined) this.bySocket.set(target, (mine = new Map()));
    if (mine.has(spec.name)) return;
    const sub: Subscriber = { target, topic, pending: null };
    mine.set(spec.name, sub);
    topic.subscribers.add(sub);
    this.deliver(sub, topic.spec.render());
  }

  /** Whether `target` was subscribed to `name`. */
  unsubscribe(target: PushTarget, name: string): boolean {
    const mine = this.bySocket.get(target);
    const sub = mine?.get(name);
    if (sub === undefined) return false;
    mine!.delete(name);
    if (mine!.size === 0) this.bySocket.delete(target);
    this.drop(sub);
    return true;
  }

  /** The socket closed. */
  removeTarget(target: PushTarget): void {
    const mine = this.bySocket.get(target);
    if (mine === undefined) return;
    this.bySocket.delete(target);
    for (const sub of mine.values()) this.drop(sub);
  }

  /** The socket drained: hand each of its subscriptions the newest push it skipped. */
  drained(target: PushTarget): void {
    const mine = this.bySocket.get(target);
    if (mine === undefined) return;
    for (const sub of mine.values()) {
      if (sub.pending === null) continue;
      if (target.getBufferedAmount() > this.options.pushLimitBytes) return;
      const message = sub.pending;
      sub.pending = null;
      target.send(message);
    }
  }

  /** A pool changed (append applied, pool deleted): its topics push within their interval. */
  poolChanged(poolId: number): void {
    const set = this.byPool.get(poolId);
    if (set === undefined) return;
    for (const topic of set) this.markDirty(topic);
  }

  /** A non-pool topic's state moved. */
  changed(name: string): void {
    const topic = this.topics.get(name);
    if (topic !== undefined) this.markDirty(topic);
  }

  stats(): HubStats {
    let subscribers = 0;
    for (const t of this.topics.values()) subscribers += t.subscribers.size;
    return { topics: this.topics.size, subscribers, pushes: this.pushes, skipped: this.skipped };
  }

  close(): void {
    for (const t of this.topics.values()) if (t.timer !== null) clearTimeout(t.timer);
    this.topics.clear();
    this.byPool.clear();
    this.bySocket.clear();
  }

  private markDirty(topic: Topic): void {
    topic.dirty = true;
    if (topic.timer !== null) return;
    // Changes applied in one turn (a group commit applies many appends) make
    // one push: even a due topic waits for the end of the turn.
    const wait = Math.max(0, topic.lastPushAt + topic.spec.intervalMs - performance.now());
    topic.timer = setTimeout(() => this.fire(topic), wait);
  }

  private fire(topic: Topic): void {
    topic.timer = null;
    if (!topic.dirty || topic.subscribers.size === 0) return;
    topic.dirty = false;
    topic.lastPushAt = performance.now();
    let message: string;
    try {
      message = topic.spec.render();
    } catch {
      return; // a pool deleted between the change and now renders next time
    }
    for (const sub of topic.subscribers) this.deliver(sub, message);
  }

  private deliver(sub: Subscriber, message: string): void {
    if (sub.target.getBufferedAmount() > this.options.pushLimitBytes) {
      sub.pending = message;
      this.skipped++;
      return;
    }
    sub.pending = null;
    this.pushes++;
    sub.target.send(message);
  }

  private drop(sub: Subscriber): void {
    const topic = sub.topic;
    topic.subscribers.delete(sub);
    if (topic.subscribers.size > 0) return;
    if (topic.timer !== null) clearTimeout(topic.timer);
    this.topics.delete(topic.spec.name);
    for (const poolId of topic.spec.poolIds) {
      const set = this.byPool.get(poolId);
      set?.delete(topic);
      if (set?.size === 0) this.byPool.delete(poolId);
    }
  }
}
