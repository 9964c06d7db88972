// Mistakes the types must catch: test/types.test.mjs expects tsc to fail with exactly the error
// named at the end of each marked line, and with no other.
import { createFeedApi, createFeedClient } from 'pgfeed';
import { mintToken } from 'pgfeed/token';
import { usePgfeed, useUnreadCount } from 'pgfeed/react';

createFeedClient({ baseUrl: '' }); // TS2345 no token
const client = createFeedClient({ token: 't', feed: 7 }); // TS2322 a feed is a string
client.subscribe((event) => {
    if (event.type === 'activity' && event.data.op === 'delete') console.log(event.data.payload); // TS2339 deletes carry no payload
    if (event.type === 'read') console.log(event.data.unread.toFixed(), event.data.positions); // TS2339 read_all has no positions
});
const count: number = client.unreadCount.value; // TS2322 null until known
client.state.subscribe((state) => state === 'open'); // TS2367 no such state
createFeedClient({ token: 't', onAuthError: async () => 42 }); // TS2322 a token is a string
createFeedApi({ token: 't' }).markRead('101'); // TS2345 ids are numbers
mintToken({ secret: 's', sub: 42 }); // TS2322 a user key is a string
usePgfeed({ token: 't', bufferSize: '50' }); // TS2322 a buffer size is a number
const badge: number = useUnreadCount({ token: 't' }); // TS2322 null until known
usePgfeed({ token: 't' }).events.push(client.recent()[0]); // TS2339 the buffer is read-only
usePgfeed({ feed: 'all' }); // TS2345 no token
console.log(count, badge);
