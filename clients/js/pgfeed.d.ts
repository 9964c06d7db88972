// Types of the pgfeed client (pgfeed.js and the modules it re-exports). The event shapes are the
// outbox's (README.md, "Event outbox"); the feed API's answers are the gateway's ("The feed API").

/** `all` needs a token with the topic "*"; `following` works with every token; else one topic. */
export type Feed = 'all' | 'following' | (string & {});

/** A token, or a function asked for one at each connect and call. */
export type TokenSource = string | (() => string | Promise<string>);

export interface Signal<T> {
    readonly value: T;
    /** Calls `cb` with the current value now and on every change. */
    subscribe(cb: (value: T) => void): () => void;
}

// ---- events ----------------------------------------------------------------------------------

export interface ActivityInsert {
    op: 'insert';
    position: number;
    source: string;
    activity_id: number;
    topic: string | null;
    created_at: string;
    /** The row's payload_columns; null when it would exceed 4000 bytes. */
    payload: Record<string, unknown> | null;
}

export interface ActivityChange {
    op: 'delete' | 'update';
    position: number;
    source: string;
    activity_id: number;
    topic: string | null;
    created_at: string;
}

export type ActivityData = ActivityInsert | ActivityChange;

export interface ReadMarks {
    op: 'read' | 'unread';
    user: string;
    positions: number[];
    activity_ids: number[];
    /** The user's unread count over feed 'all' after the change. */
    unread: number;
}

export interface ReadAll {
    op: 'read_all';
    user: string;
    feed: Feed;
    up_to: number;
    changed: number;
    unread: number;
}

export type ReadData = ReadMarks | ReadAll;

export type FeedEvent =
    | { type: 'activity'; id: string; data: ActivityData }
    | { type: 'read'; id: string; data: ReadData };

export interface ResetData {
    reason: 'trimmed' | 'stream_gone';
}

// ---- errors ----------------------------------------------------------------------------------

export type FeedErrorCode =
    | 'unauthorized'
    | 'stream_refused'
    | 'stream_failed'
    | 'poll_failed'
    | 'malformed_event'
    | 'callback_failed'
    | 'api_failed';

export interface FeedError extends Error {
    code: FeedErrorCode;
    /** The HTTP status, where an answer (or none: 0) caused it. */
    status?: number;
}

// ---- the stream client -----------------------------------------------------------------------

export type FeedState = 'connecting' | 'live' | 'reconnecting' | 'polling' | 'unauthorized' | 'closed';

export interface Backoff {
    initialMs?: number;
    maxMs?: number;
}

export interface StorageLike {
    getItem(key: string): string | null;
    setItem(key: string, value: string): void;
}

export interface FeedClientOptions {
    baseUrl?: string;
    token: TokenSource;
    feed?: Feed;
    storage?: StorageLike | null;
    fetch?: typeof fetch;
    setTimeout?: (fn: () => void, ms: number) => unknown;
    clearTimeout?: (id: any) => void;
    now?: () => number;
    random?: () => number;
    maxBuffer?: number;
    backoff?: Backoff;
    maxFailuresBeforePolling?: number;
    pollIntervalMs?: number;
    countRefreshMs?: number;
    /** 401/403: the client stops; a token returned (or resolved) resumes it. */
    onAuthError?: (error: FeedError & { code: 'unauthorized'; status: number }) =>
        string | null | undefined | void | Promise<string | null | undefined | void>;
    onReset?: (data: ResetData | null) => void;
    onError?: (error: FeedError) => void;
}

export interface FeedClient {
    subscribe(cb: (event: FeedEvent) => void): () => void;
    readonly unreadCount: Signal<number | null>;
    readonly newActivities: Signal<number>;
    readonly state: Signal<FeedState>;
    recent(): FeedEvent[];
    markSeen(): void;
    readonly lastEventId: string | null;
    close(): void;
}

export function createFeedClient(options: FeedClientOptions): FeedClient;

// ---- the feed API ----------------------------------------------------------------------------

export interface FeedItem {
    position: number;
    activity_id: number;
    source: string;
    topic: string | null;
    created_at: string;
    is_read: boolean;
    payload: Record<string, unknown> | null;
}

export interface FeedPage {
    feed: Feed;
    items: FeedItem[];
    /** Pass as `before` for the next page; null: no more. */
    next_before: number | null;
}

export interface UnreadCount {
    feed: Feed;
    unread: number;
    /** Items above `after`, when it was given. */
    new?: number;
}

export interface FeedApiOptions {
    baseUrl?: string;
    token: TokenSource;
    fetch?: typeof fetch;
}

export interface FeedApi {
    page(options?: { feed?: Feed; limit?: number; before?: number | null; unreadOnly?: boolean }): Promise<FeedPage>;
    unreadCount(options?: { feed?: Feed; after?: number }): Promise<UnreadCount>;
    markRead(ids: readonly number[]): Promise<{ changed: number }>;
    markUnread(ids: readonly number[]): Promise<{ changed: number }>;
    markAllRead(options?: { feed?: Feed; upTo?: number }): Promise<{ changed: number }>;
    follows(): Promise<{ topics: string[] }>;
    follow(topic: string): Promise<{ changed: boolean }>;
    unfollow(topic: string): Promise<{ changed: boolean }>;
}

export function createFeedApi(options: FeedApiOptions): FeedApi;

export const DEFAULT_FEED: 'following';

// ---- helpers ---------------------------------------------------------------------------------

export function createSignal<T>(initial: T): Signal<T> & { set(next: T): void };
export function storageKey(baseUrl: string, feed: Feed): string;
export function backoffDelay(attempt: number, backoff: Required<Backoff>, random: () => number): number;
export function retryAfterMs(value: string | null | undefined, now: number): number | null;
export function createEventStreamParser(handlers: {
    onEvent(event: { type: string; data: string; lastEventId: string }): void;
    onComment?(): void;
}): { push(text: string): void };
