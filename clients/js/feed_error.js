// The one kind of error the client reports: an Error with a `code` (see the README's list).

export function feedError(code, message, extra = {}) {
    const { cause, ...fields } = extra;
    const error = new Error(message, cause === undefined ? undefined : { cause });
    return Object.assign(error, { code }, fields);
}

/** A global function bound to globalThis (fetch and the timers refuse another `this` in browsers). */
export function bound(fn) {
    return typeof fn === 'function' ? fn.bind(globalThis) : fn;
}
