// Types of pgfeed/react (react/index.js): the client's options and values as hooks.
import type { FeedClientOptions, FeedError, FeedEvent, FeedState } from '../pgfeed.js';

export interface PgfeedOptions extends Omit<FeedClientOptions, 'token' | 'maxBuffer'> {
    /** No token (null, undefined or ''): no stream, state 'closed'. */
    token: FeedClientOptions['token'] | null | undefined;
    /** How many recent events `events` keeps (default 50). */
    bufferSize?: number;
    /** Each `activity` and `read` event, as `subscribe` gives them. */
    onEvent?: (event: FeedEvent) => void;
}

export interface PgfeedView {
    state: FeedState;
    /** The unread count of the feed; null until known. */
    unreadCount: number | null;
    /** `activity` inserts since the last `acknowledge()` (or reset). */
    newCount: number;
    /** The last `bufferSize` events, oldest first. */
    readonly events: readonly FeedEvent[];
    /** The last error, until the stream is live again. */
    error: FeedError | null;
    /** Sets `newCount` to 0. */
    acknowledge(): void;
}

export function usePgfeed(options: PgfeedOptions): PgfeedView;
export function useUnreadCount(options: PgfeedOptions): number | null;
