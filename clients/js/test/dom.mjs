// A DOM for @testing-library/react in node: happy-dom's window and document as globals, and
// nothing else of it (the client keeps node's own fetch, streams and AbortController).
import { Window } from 'happy-dom';

const window = new Window({ url: 'http://localhost/' });
for (const [name, value] of Object.entries({ window, document: window.document, navigator: window.navigator }))
    Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
globalThis.IS_REACT_ACT_ENVIRONMENT = true;
