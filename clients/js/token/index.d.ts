// Types of pgfeed/token (Node only).

export interface MintOptions {
    /** One of the gateway's auth.hs256_secrets. */
    secret: string | Uint8Array;
    /** The user key. */
    sub: string;
    /** Patterns the user may follow; "*" matches any run of characters. */
    topics?: readonly string[];
    /** Seconds; 3600 when absent. */
    expiresIn?: number;
    /** `nbf`, seconds since the epoch. */
    notBefore?: number;
    /** `aud`: must name the gateway's auth.audience when that is set. */
    audience?: string | readonly string[];
    /** `iss`: must be the gateway's auth.issuer when that is set. */
    issuer?: string;
    /** Seconds since the epoch; now when absent. */
    now?: number;
}

export function mintToken(options: MintOptions): string;
