// How an app uses the client, typed: must compile (test/types.test.mjs runs tsc --noEmit).
import {
    createFeedApi, createFeedClient,
    type FeedClient, type FeedEvent, type FeedItem, type FeedState,
} from 'pgfeed';
import { mintToken } from 'pgfeed/token';

declare function refreshToken(): Promise<string>;
declare function prependItem(activityId: number, payload: Record<string, unknown> | null): void;

const client: FeedClient = createFeedClient({
    baseUrl: 'https://feed.example.com',
    token: async () => 'a.jwt.token',
    onAuthError: (error) => (error.status === 401 ? refreshToken() : undefined),
    onReset: (data) => console.log(data?.reason),
    onError: (error) => console.warn(error.code, error.status),
    backoff: { initialMs: 250 },
});

client.subscribe((event: FeedEvent) => {
    if (event.type === 'activity') {
        if (event.data.op === 'insert') prependItem(event.data.activity_id, event.data.payload);
    } else if (event.data.op === 'read_all') {
        const upTo: number = event.data.up_to;
        console.log(upTo, event.data.unread);
    } else {
        const ids: number[] = event.data.activity_ids;
        console.log(ids);
    }
});
const badge: number | null = client.unreadCount.value;
const unsubscribe = client.state.subscribe((state: FeedState) => console.log(state, badge));
unsubscribe();
client.markSeen();
client.close();

const api = createFeedApi({ token: 'a.jwt.token' });
async function firstPages(): Promise<FeedItem[]> {
    const first = await api.page({ feed: 'following', limit: 20 });
    const items = [...first.items];
    if (first.next_before !== null) items.push(...(await api.page({ before: first.next_before })).items);
    const { unread } = await api.unreadCount({ feed: 'mp_id:7' });
    const { changed } = await api.markRead([items[0].activity_id]);
    const { topics } = await api.follows();
    console.log(unread + changed, topics.join(','), (await api.follow('mp_id:7')).changed === true);
    return items;
}
void firstPages();

// the backend's side
const minted: string = mintToken({ secret: 's', sub: 'user-42', topics: ['mp_id:*'], audience: ['feeds'], expiresIn: 600 });
console.log(minted);

// a React component's side (pgfeed/react); the hooks are plain functions to tsc
import { usePgfeed, useUnreadCount, type PgfeedView } from 'pgfeed/react';

function useBadge(token: string | null): string {
    const unread: number | null = useUnreadCount({ token, feed: 'following' });
    const feed: PgfeedView = usePgfeed({
        token: token ?? undefined,
        bufferSize: 20,
        onEvent: (event) => console.log(event.id),
        onAuthError: () => refreshToken(),
    });
    const latest = feed.events.at(-1);
    if (latest?.type === 'activity' && latest.data.op === 'insert') console.log(latest.data.payload);
    if (feed.state === 'polling' || feed.error?.code === 'stream_refused') feed.acknowledge();
    return `${unread ?? ''} ${feed.newCount}`;
}
console.log(useBadge('a.jwt.token'));
