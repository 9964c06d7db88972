// Reads a text/event-stream body as the HTML standard's "event stream interpretation" says.
// The client reads the stream with fetch instead of EventSource because EventSource never shows
// the status of a refused connect (401 vs 429 vs 503) nor its Retry-After. The parser is written
// here rather than taken from npm so that the client stays a few files a page can import without
// a bundler; the format is a few dozen lines of the standard.

/**
 * An incremental parser: push(text) with decoded text as it arrives. Calls
 * onEvent({type, data, lastEventId}) per dispatched event and onComment() per comment line
 * (the gateway's heartbeat). `retry:` is ignored: the client paces its own reconnects.
 */
export function createEventStreamParser({ onEvent, onComment = () => {} }) {
    let pending = '';      // text after the last complete line
    let type = '';
    let data = '';
    let lastEventId = '';  // kept across events, as the standard's "last event ID buffer"

    function line(text) {
        if (text === '') {
            if (data !== '') onEvent({ type: type || 'message', data: data.slice(0, -1), lastEventId });
            type = '';
            data = '';
            return;
        }
        if (text[0] === ':') {
            onComment();
            return;
        }
        const colon = text.indexOf(':');
        const field = colon === -1 ? text : text.slice(0, colon);
        let value = colon === -1 ? '' : text.slice(colon + 1);
        if (value[0] === ' ') value = value.slice(1);
        if (field === 'event') type = value;
        else if (field === 'data') data += `${value}\n`;
        else if (field === 'id' && !value.includes('\0')) lastEventId = value;
    }

    return {
        push(text) {
            pending += text;
            const terminators = /\r\n|\r|\n/g;
            let start = 0;
            for (let match; (match = terminators.exec(pending)) !== null;) {
                // A CR that ends the text may be the first half of a CRLF: wait for more.
                if (match[0] === '\r' && match.index === pending.length - 1) break;
                line(pending.slice(start, match.index));
                start = terminators.lastIndex;
            }
            pending = pending.slice(start);
        },
    };
}

/** Feeds a fetch Response body (a ReadableStream of bytes) to `parser` until it ends. */
export async function readEventStream(body, parser) {
    const reader = body.getReader();
    const decoder = new TextDecoder(); // UTF-8, and drops a leading BOM as the standard says
    try {
        for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            parser.push(decoder.decode(value, { stream: true }));
        }
    } finally {
        reader.releaseLock();
    }
}
