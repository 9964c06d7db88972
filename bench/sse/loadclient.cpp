// loadclient: an SSE load client for the gateway benchmark (bench/sse/run.sh).
//
// Opens N Server-Sent Events connections to a loopback host:port/path over raw HTTP/1.1 on libevent
// bufferevents, spread over the source addresses 127.0.0.2 .. 127.0.0.(K+1) (each gives its own
// ~28k ephemeral ports) and over P forked processes (each capped at 20,000 open files). Every event's
// data is JSON carrying "seq" (the publisher's counter) and "ts_us" (wall clock microseconds set just
// before publishing), at the top level or under "payload". Per connection it records which seq of the
// expected range [--seq-first, --seq-last] arrived (lost: missing below the highest seq it got;
// undelivered: missing above it when the window closed; duplicates; out of order), and a latency
// histogram (receive time - ts_us) over all deliveries. When the event's SSE id is a Redis stream id
// ("<ms>-<n>", as pgfeed-notifier sends), the latency is also split at the moment the entry was added
// to the stream: publish-to-stream (id ms - ts_us) and stream-to-client (receive time - id ms).
//
// Phases: connect (at most --inflight connects in flight per process, until all are established or
// failed, or --connect-timeout), then the measuring window: until every live connection has the
// whole expected range, or --grace seconds after SIGUSR1 (the caller's "publisher done"), or
// --measure seconds at most (an empty range just holds the connections that long), then close. When the connect phase
// ends it writes --ready-file (a JSON line), the signal for the caller to start publishing. Prints one JSON line with
// the results on stdout.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace {

constexpr long kMaxFilesPerProcess = 20000; // the hard cap of every process here
constexpr long kSpareFiles = 64;            // pipes, stdio, libevent's own
constexpr size_t kMaxHeaderBytes = 65536;
constexpr size_t kMaxLineBytes = 1 << 20;

volatile sig_atomic_t publisher_done = 0;

struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string path = "/";
    std::string token;
    long connections = 0;
    int processes = 0; // 0: as few as the file cap allows, at least 2
    int sources = 8;
    int inflight = 128; // per process
    double connect_timeout = 60;
    double measure = 10; // the longest the window stays open
    double grace = 10;   // after SIGUSR1 (the publisher is done): the window closes at most this much later
    long long seq_first = 1;
    long long seq_last = 0; // below seq_first: no events expected, hold the connections
    std::string ready_file;
};

double now_mono() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int64_t now_wall_us() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// -- latency histogram: exact below 2048 us, then 1024 sub-buckets per power of two (0.1% wide) ------

constexpr int kSubBits = 10;
constexpr int64_t kSub = 1 << kSubBits;
constexpr size_t kBuckets = 2 * kSub + 40 * kSub;

size_t bucket_of(int64_t us) {
    if (us < 0)
        us = 0;
    if (us < 2 * kSub)
        return size_t(us);
    int shift = 63 - __builtin_clzll(uint64_t(us)) - kSubBits; // >= 1
    size_t index = size_t(2 * kSub + (shift - 1) * kSub + ((us >> shift) - kSub));
    return std::min(index, kBuckets - 1);
}

// The middle of a bucket, in microseconds.
double bucket_value(size_t index) {
    if (index < size_t(2 * kSub))
        return double(index);
    int64_t shift = int64_t(index - 2 * kSub) / kSub + 1;
    int64_t sub = int64_t(index - 2 * kSub) % kSub + kSub;
    return double(sub << shift) + double(int64_t(1) << shift) / 2;
}

// -- the counts a process reports -------------------------------------------------------------------

struct Stats {
    long established = 0, failed = 0, dropped = 0, complete = 0;
    long complete_live = 0; // complete and still open: the end of the window waits for the others
    long long delivered = 0, lost = 0, undelivered = 0, duplicates = 0, out_of_order = 0, stale = 0, unparsed = 0;
    long long control_events = 0; // connected / reset
    long long bytes = 0;
    int64_t first_ts_us = INT64_MAX, last_recv_us = 0, max_latency_us = 0;
    std::map<std::string, long> failures;
    // 0: receive - ts_us; 1: stream id ms - ts_us; 2: receive - stream id ms
    std::vector<uint64_t> hist[3] = {std::vector<uint64_t>(kBuckets), std::vector<uint64_t>(kBuckets),
                                     std::vector<uint64_t>(kBuckets)};
};

// -- one connection -----------------------------------------------------------------------------------

enum class State : uint8_t { Connecting, Headers, Body, Closed };
enum class Chunk : uint8_t { Size, Data, DataEnd, Trailer };

struct Worker;

struct Conn {
    Worker *worker = nullptr;
    bufferevent *bev = nullptr;
    State state = State::Connecting;
    bool status_seen = false;
    bool chunked = false;
    bool last_cr = false;
    bool has_data = false;
    bool complete = false;
    bool established = false;
    bool chunk_digits = false, chunk_ext = false;
    Chunk chunk = Chunk::Size;
    int status = 0;
    int64_t chunk_left = 0;
    int64_t content_left = -1; // -1: until the connection closes
    size_t header_bytes = 0;
    std::string line; // a partial SSE line (chunk borders fall anywhere in it)
    std::string event;
    std::string data;
    std::vector<uint64_t> seen; // a bit per expected seq
    long long received = 0;
    long long last_seq = 0;
    int64_t id_ms = 0; // the current event's id when it is a stream id "<ms>-<n>"
};

struct Worker {
    Options opt;
    int index = 0;
    int up_fd = -1, down_fd = -1;
    event_base *base = nullptr;
    sockaddr_in target{};
    std::vector<sockaddr_in> sources;
    std::vector<long> global_ids; // global connection numbers of this process
    std::vector<std::unique_ptr<Conn>> conns;
    size_t next = 0;
    int inflight = 0;
    bool connect_over = false;
    double started = 0;
    long long expected = 0; // events per connection
    int64_t read_now_us = 0;
    Stats stats;
    event *tick = nullptr, *command = nullptr;
};

void report_status(Worker &w);
void start_more(Worker &w);

void fail(Conn &c, const std::string &reason) {
    Worker &w = *c.worker;
    if (c.state == State::Closed)
        return;
    if (c.state == State::Body) {
        w.stats.dropped++;
        if (c.complete)
            w.stats.complete_live--;
        w.stats.failures["dropped_" + reason]++;
    } else {
        w.stats.failed++;
        w.stats.failures[reason]++;
        w.inflight--;
    }
    c.state = State::Closed;
    if (c.bev) {
        bufferevent_free(c.bev);
        c.bev = nullptr;
    }
    c.line = std::string();
    c.data = std::string();
    c.event = std::string();
}

bool find_int(const char *s, size_t n, const char *key, size_t key_len, int64_t &out) {
    const char *end = s + n;
    const char *p = static_cast<const char *>(memmem(s, n, key, key_len));
    if (!p)
        return false;
    p += key_len;
    while (p < end && (*p == ' ' || *p == '\t'))
        ++p;
    if (p >= end || *p != ':')
        return false;
    ++p;
    while (p < end && (*p == ' ' || *p == '\t'))
        ++p;
    bool negative = false;
    if (p < end && *p == '-') {
        negative = true;
        ++p;
    }
    if (p >= end || *p < '0' || *p > '9')
        return false;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    out = negative ? -v : v;
    return true;
}

void on_event(Conn &c) {
    Worker &w = *c.worker;
    Stats &st = w.stats;
    if (c.event == "connected" || c.event == "reset") {
        st.control_events++;
        return;
    }
    int64_t seq, ts_us;
    // data.seq or data.payload.seq: the first "seq" key either way.
    if (!find_int(c.data.data(), c.data.size(), "\"seq\"", 5, seq) ||
        !find_int(c.data.data(), c.data.size(), "\"ts_us\"", 7, ts_us)) {
        st.unparsed++;
        return;
    }
    if (seq < w.opt.seq_first || seq > w.opt.seq_last) {
        st.stale++;
        return;
    }
    st.delivered++;
    int64_t latency = w.read_now_us - ts_us;
    st.hist[0][bucket_of(latency)]++;
    if (c.id_ms > 0) {
        st.hist[1][bucket_of(c.id_ms * 1000 - ts_us)]++;
        st.hist[2][bucket_of(w.read_now_us - c.id_ms * 1000)]++;
    }
    st.max_latency_us = std::max(st.max_latency_us, latency);
    st.first_ts_us = std::min(st.first_ts_us, ts_us);
    st.last_recv_us = std::max(st.last_recv_us, w.read_now_us);
    uint64_t bit = uint64_t(seq - w.opt.seq_first);
    if (c.seen.empty())
        c.seen.assign(size_t((w.expected + 63) / 64), 0);
    uint64_t &word = c.seen[bit / 64];
    if (word & (uint64_t(1) << (bit % 64))) {
        st.duplicates++;
        return;
    }
    word |= uint64_t(1) << (bit % 64);
    if (seq < c.last_seq)
        st.out_of_order++;
    c.last_seq = std::max<long long>(c.last_seq, seq);
    if (++c.received == w.expected) {
        c.complete = true;
        st.complete++;
        st.complete_live++;
    }
}

void sse_line(Conn &c, const char *s, size_t n) {
    if (n == 0) { // dispatch
        if (c.has_data)
            on_event(c);
        c.has_data = false;
        c.data.clear();
        c.event.clear();
        c.id_ms = 0;
        return;
    }
    if (s[0] == ':')
        return; // a comment: heartbeats, nchan's ": hi"
    const char *colon = static_cast<const char *>(memchr(s, ':', n));
    size_t name_len = colon ? size_t(colon - s) : n;
    const char *value = colon ? colon + 1 : s + n;
    size_t value_len = colon ? n - name_len - 1 : 0;
    if (value_len && *value == ' ') {
        ++value;
        --value_len;
    }
    if (name_len == 4 && memcmp(s, "data", 4) == 0) {
        if (c.has_data)
            c.data.push_back('\n');
        c.data.append(value, value_len);
        c.has_data = true;
    } else if (name_len == 5 && memcmp(s, "event", 5) == 0) {
        c.event.assign(value, value_len);
    } else if (name_len == 2 && memcmp(s, "id", 2) == 0) {
        // A stream id: milliseconds since the epoch (13 digits these days), '-', a sequence.
        int64_t ms = 0;
        size_t k = 0;
        while (k < value_len && value[k] >= '0' && value[k] <= '9' && k < 18)
            ms = ms * 10 + (value[k++] - '0');
        c.id_ms = (k >= 12 && k < value_len && value[k] == '-') ? ms : 0;
    } // retry and unknown fields: nothing to do
}

// Feeds body bytes (after any transfer decoding) to the SSE parser. False when the connection failed.
bool sse_feed(Conn &c, const char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (c.last_cr) {
            c.last_cr = false;
            if (p[i] == '\n') {
                ++i;
                continue;
            }
        }
        const char *s = p + i;
        size_t rem = n - i, j = 0;
        while (j < rem && s[j] != '\n' && s[j] != '\r')
            ++j;
        if (j == rem) {
            c.line.append(s, j);
            if (c.line.size() > kMaxLineBytes) {
                fail(c, "line_too_long");
                return false;
            }
            return true;
        }
        if (c.line.empty()) {
            sse_line(c, s, j);
        } else {
            c.line.append(s, j);
            sse_line(c, c.line.data(), c.line.size());
            c.line.clear();
        }
        c.last_cr = s[j] == '\r';
        i += j + 1;
    }
    return true;
}

// Undoes chunked transfer encoding; the size line is parsed as it comes, so a chunk border may fall
// anywhere, also inside a pending SSE line.
void chunked_feed(Conn &c, const char *p, size_t n) {
    size_t i = 0;
    while (i < n && c.state == State::Body) {
        switch (c.chunk) {
        case Chunk::Size: {
            char ch = p[i++];
            if (ch == '\n') {
                if (!c.chunk_digits) {
                    fail(c, "bad_chunk");
                    return;
                }
                c.chunk = c.chunk_left ? Chunk::Data : Chunk::Trailer;
                c.chunk_digits = c.chunk_ext = false;
                if (c.chunk == Chunk::Trailer)
                    fail(c, "ended"); // the last chunk: the server ended the stream
            } else if (!c.chunk_ext && isxdigit(static_cast<unsigned char>(ch))) {
                int digit = ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
                if (c.chunk_left > (INT64_MAX >> 5)) {
                    fail(c, "bad_chunk");
                    return;
                }
                c.chunk_left = c.chunk_left * 16 + digit;
                c.chunk_digits = true;
            } else if (ch != '\r') {
                c.chunk_ext = true; // ";ext" or junk after the size
            }
            break;
        }
        case Chunk::Data: {
            size_t take = size_t(std::min<int64_t>(c.chunk_left, int64_t(n - i)));
            if (!sse_feed(c, p + i, take))
                return;
            i += take;
            c.chunk_left -= int64_t(take);
            if (c.chunk_left == 0)
                c.chunk = Chunk::DataEnd;
            break;
        }
        case Chunk::DataEnd: {
            const char *nl = static_cast<const char *>(memchr(p + i, '\n', n - i));
            if (!nl)
                return;
            i = size_t(nl - p) + 1;
            c.chunk = Chunk::Size;
            break;
        }
        case Chunk::Trailer:
            return;
        }
    }
}

void on_body(Conn &c, const char *p, size_t n) {
    c.worker->stats.bytes += (long long)n;
    if (c.content_left >= 0) {
        n = size_t(std::min<int64_t>(c.content_left, int64_t(n)));
        c.content_left -= int64_t(n);
    }
    if (c.chunked)
        chunked_feed(c, p, n);
    else
        sse_feed(c, p, n);
    if (c.state == State::Body && c.content_left == 0)
        fail(c, "ended");
}

void header_line(Conn &c, const char *s, size_t n) {
    if (!c.status_seen) {
        c.status_seen = true;
        // HTTP/1.1 200 OK
        const char *sp = static_cast<const char *>(memchr(s, ' ', n));
        c.status = sp ? atoi(sp + 1) : 0;
        return;
    }
    const char *colon = static_cast<const char *>(memchr(s, ':', n));
    if (!colon)
        return;
    std::string name(s, size_t(colon - s));
    std::string value(colon + 1, size_t(s + n - colon - 1));
    for (auto &ch : name)
        ch = char(tolower(ch));
    for (auto &ch : value)
        ch = char(tolower(ch));
    if (name == "transfer-encoding" && value.find("chunked") != std::string::npos)
        c.chunked = true;
    else if (name == "content-length")
        c.content_left = atoll(value.c_str());
}

void on_read(bufferevent *bev, void *arg) {
    Conn &c = *static_cast<Conn *>(arg);
    Worker &w = *c.worker;
    evbuffer *in = bufferevent_get_input(bev);
    w.read_now_us = now_wall_us();
    while (c.state == State::Headers) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        if (!line) {
            if (evbuffer_get_length(in) + c.header_bytes > kMaxHeaderBytes)
                fail(c, "header_too_large");
            break;
        }
        c.header_bytes += len + 2;
        if (len == 0) {
            free(line);
            if (c.status != 200) {
                fail(c, "status_" + std::to_string(c.status));
                break;
            }
            c.state = State::Body;
            c.established = true;
            if (c.chunked)
                c.content_left = -1; // chunked wins over a Content-Length

            w.inflight--;
            w.stats.established++;
            break;
        }
        header_line(c, line, len);
        free(line);
    }
    static char buf[65536];
    while (c.state == State::Body && evbuffer_get_length(in) > 0) {
        int n = evbuffer_remove(in, buf, sizeof buf);
        if (n <= 0)
            break;
        on_body(c, buf, size_t(n));
    }
    start_more(w);
}

std::string error_name(int err) {
    switch (err) {
    case ECONNREFUSED:
        return "refused";
    case ECONNRESET:
        return "reset";
    case EADDRNOTAVAIL:
        return "no_local_port";
    case ETIMEDOUT:
        return "timeout";
    case EMFILE:
    case ENFILE:
        return "too_many_files";
    case 0:
        return "closed";
    default:
        return std::string("errno_") + std::to_string(err);
    }
}

void on_bev_event(bufferevent *bev, short what, void *arg) {
    Conn &c = *static_cast<Conn *>(arg);
    Worker &w = *c.worker;
    if (what & BEV_EVENT_CONNECTED) {
        c.state = State::Headers;
        std::string request = "GET " + w.opt.path + " HTTP/1.1\r\nHost: " + w.opt.host + ":" +
                              std::to_string(w.opt.port) +
                              "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n";
        if (!w.opt.token.empty())
            request += "Authorization: Bearer " + w.opt.token + "\r\n";
        request += "\r\n";
        bufferevent_write(bev, request.data(), request.size());
        bufferevent_enable(bev, EV_READ);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        int err = (what & BEV_EVENT_ERROR) ? EVUTIL_SOCKET_ERROR() : 0;
        if (c.state == State::Headers && (what & BEV_EVENT_EOF))
            fail(c, c.status_seen ? "closed_in_headers" : "closed_before_response");
        else
            fail(c, error_name(err));
        start_more(w);
    }
}

void start_one(Worker &w) {
    size_t k = w.next++;
    auto conn = std::make_unique<Conn>();
    Conn &c = *conn;
    c.worker = &w;
    w.conns.push_back(std::move(conn));
    w.inflight++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(c, error_name(errno));
        return;
    }
    int one = 1;
    // The port is chosen at connect() for the whole 4-tuple, not at bind() for the address alone.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    const sockaddr_in &src = w.sources[size_t(w.global_ids[k]) % w.sources.size()];
    if (bind(fd, reinterpret_cast<const sockaddr *>(&src), sizeof src) != 0) {
        int err = errno;
        close(fd);
        fail(c, "bind_" + error_name(err));
        return;
    }
    c.bev = bufferevent_socket_new(w.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c.bev) {
        close(fd);
        fail(c, "bufferevent");
        return;
    }
    bufferevent_setcb(c.bev, on_read, nullptr, on_bev_event, &c);
    if (bufferevent_socket_connect(c.bev, reinterpret_cast<const sockaddr *>(&w.target), sizeof w.target) != 0)
        fail(c, error_name(EVUTIL_SOCKET_ERROR()));
}

void start_more(Worker &w) {
    while (!w.connect_over && w.inflight < w.opt.inflight && w.next < w.global_ids.size())
        start_one(w);
}

void connect_deadline(Worker &w) {
    w.connect_over = true;
    for (auto &c : w.conns)
        if (c->state == State::Connecting || c->state == State::Headers)
            fail(*c, "connect_timeout");
    while (w.next < w.global_ids.size()) {
        w.next++;
        w.stats.failed++;
        w.stats.failures["not_started"]++;
    }
}

void write_all(int fd, const std::string &s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(3);
        off += size_t(n);
    }
}

void report_status(Worker &w) {
    const Stats &s = w.stats;
    char line[256];
    snprintf(line, sizeof line, "S %ld %ld %ld %ld %lld\n", s.established, s.failed, s.dropped, s.complete_live,
             s.delivered);
    write_all(w.up_fd, line);
}

void finish(Worker &w) {
    Stats &s = w.stats;
    // Lost: what each connection that got through the connect phase lacks of the expected range.
    for (auto &c : w.conns) {
        if (c->established && w.expected > 0) {
            // Lost: missing below the highest seq the connection got (a gap in what it was sent);
            // undelivered: missing above it (not there when the window closed).
            long long gaps = c->received ? (c->last_seq - w.opt.seq_first + 1) - c->received : 0;
            s.lost += gaps;
            s.undelivered += w.expected - c->received - gaps;
        }
    }
    for (auto &c : w.conns) {
        if (c->bev) {
            linger lg{1, 0}; // reset: no TIME_WAIT left holding ports for the next scenario
            setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            bufferevent_free(c->bev);
            c->bev = nullptr;
        }
    }
    std::string out =
        "F " + std::to_string(s.established) + " " + std::to_string(s.failed) + " " + std::to_string(s.dropped) + " " +
        std::to_string(s.complete) + " " + std::to_string(s.delivered) + " " + std::to_string(s.lost) + " " +
        std::to_string(s.duplicates) + " " + std::to_string(s.out_of_order) + " " + std::to_string(s.stale) + " " +
        std::to_string(s.unparsed) + " " + std::to_string(s.control_events) + " " + std::to_string(s.bytes) + " " +
        std::to_string(s.first_ts_us) + " " + std::to_string(s.last_recv_us) + " " + std::to_string(s.max_latency_us) +
        " " + std::to_string(s.undelivered) + "\n";
    out += "R";
    for (auto &f : s.failures)
        out += " " + f.first + "=" + std::to_string(f.second);
    out += "\n";
    for (int h = 0; h < 3; ++h) {
        out += "H" + std::to_string(h);
        for (size_t i = 0; i < kBuckets; ++i)
            if (s.hist[h][i])
                out += " " + std::to_string(i) + ":" + std::to_string(s.hist[h][i]);
        out += "\n";
    }
    out += "E\n";
    write_all(w.up_fd, out);
    _exit(0);
}

void on_tick(evutil_socket_t, short, void *arg) {
    Worker &w = *static_cast<Worker *>(arg);
    if (!w.connect_over && now_mono() - w.started > w.opt.connect_timeout)
        connect_deadline(w);
    report_status(w);
}

void on_command(evutil_socket_t fd, short, void *arg) {
    Worker &w = *static_cast<Worker *>(arg);
    char cmd;
    ssize_t n = read(fd, &cmd, 1);
    if (n <= 0)
        _exit(4); // the parent is gone
    if (cmd == 'Q')
        finish(w);
}

[[noreturn]] void run_worker(Worker &w) {
    rlimit rl{kMaxFilesPerProcess, kMaxFilesPerProcess};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, kMaxFilesPerProcess);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    w.base = event_base_new();
    w.started = now_mono();
    w.conns.reserve(w.global_ids.size());
    w.tick = event_new(w.base, -1, EV_PERSIST, on_tick, &w);
    timeval tv{0, 200000};
    event_add(w.tick, &tv);
    w.command = event_new(w.base, w.down_fd, EV_READ | EV_PERSIST, on_command, &w);
    event_add(w.command, nullptr);
    start_more(w);
    event_base_dispatch(w.base);
    _exit(5);
}

// -- the parent -------------------------------------------------------------------------------------------

struct Child {
    pid_t pid = -1;
    int up = -1, down = -1;
    std::string buf;
    long established = 0, failed = 0, dropped = 0, complete = 0;
    long long delivered = 0;
    bool final = false;
    std::vector<long long> fin;
    std::string failures;
    std::string hist[3];
};

void usage() {
    fprintf(stderr, "usage: loadclient --port P [--host 127.0.0.1] [--path /] [--token JWT] --connections N\n"
                    "                  [--processes P] [--sources K] [--inflight I] [--connect-timeout S]\n"
                    "                  [--measure S] [--grace S] [--seq-first A --seq-last B] [--ready-file F]\n"
                    "SIGUSR1 says the publisher is done: the window then closes within --grace seconds.\n");
    exit(64);
}

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        std::string v;
        auto eq = a.find('=');
        if (eq != std::string::npos) {
            v = a.substr(eq + 1);
            a = a.substr(0, eq);
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            usage();
        }
        if (a == "--host")
            o.host = v;
        else if (a == "--port")
            o.port = atoi(v.c_str());
        else if (a == "--path")
            o.path = v;
        else if (a == "--token")
            o.token = v;
        else if (a == "--connections")
            o.connections = atol(v.c_str());
        else if (a == "--processes")
            o.processes = atoi(v.c_str());
        else if (a == "--sources")
            o.sources = atoi(v.c_str());
        else if (a == "--inflight")
            o.inflight = atoi(v.c_str());
        else if (a == "--connect-timeout")
            o.connect_timeout = atof(v.c_str());
        else if (a == "--measure")
            o.measure = atof(v.c_str());
        else if (a == "--grace")
            o.grace = atof(v.c_str());
        else if (a == "--seq-first")
            o.seq_first = atoll(v.c_str());
        else if (a == "--seq-last")
            o.seq_last = atoll(v.c_str());
        else if (a == "--ready-file")
            o.ready_file = v;
        else
            usage();
    }
    if (o.port <= 0 || o.port > 65535 || o.connections <= 0 || o.sources < 1 || o.sources > 250 || o.inflight < 1 ||
        o.connect_timeout <= 0 || o.measure < 0)
        usage();
    return o;
}

// Reads what the children wrote; returns false once every child has sent its final report or gone.
void drain_child(Child &ch) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(ch.up, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 && !ch.final) {
                close(ch.up);
                ch.up = -1;
            }
            return;
        }
        ch.buf.append(buf, size_t(n));
        if (n < ssize_t(sizeof buf))
            break;
    }
    size_t pos;
    while ((pos = ch.buf.find('\n')) != std::string::npos) {
        std::string line = ch.buf.substr(0, pos);
        ch.buf.erase(0, pos + 1);
        if (line.empty())
            continue;
        if (line[0] == 'S') {
            sscanf(line.c_str(), "S %ld %ld %ld %ld %lld", &ch.established, &ch.failed, &ch.dropped, &ch.complete,
                   &ch.delivered);
        } else if (line[0] == 'F') {
            char *p = &line[1];
            while (*p) {
                char *end;
                long long v = strtoll(p, &end, 10);
                if (end == p)
                    break;
                ch.fin.push_back(v);
                p = end;
            }
        } else if (line[0] == 'R') {
            ch.failures = line.substr(1);
        } else if (line[0] == 'H' && line.size() >= 2 && line[1] >= '0' && line[1] <= '2') {
            ch.hist[line[1] - '0'] = line.substr(2);
        } else if (line[0] == 'E') {
            ch.final = true;
        }
    }
}

double percentile(const std::vector<uint64_t> &hist, uint64_t total, double p) {
    if (!total)
        return -1;
    uint64_t rank = std::max<uint64_t>(1, uint64_t(std::ceil(p / 100.0 * double(total))));
    uint64_t seen = 0;
    for (size_t i = 0; i < hist.size(); ++i) {
        seen += hist[i];
        if (seen >= rank)
            return bucket_value(i) / 1000.0;
    }
    return -1;
}

} // namespace

int main(int argc, char **argv) {
    Options opt = parse(argc, argv);
    in_addr host{};
    if (inet_pton(AF_INET, opt.host.c_str(), &host) != 1 || (ntohl(host.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadclient: --host must be an IPv4 loopback address (127.0.0.0/8), not %s\n",
                opt.host.c_str());
        return 64;
    }
    long per_process_cap = kMaxFilesPerProcess - kSpareFiles;
    if (opt.processes <= 0)
        opt.processes = int(std::max<long>(2, (opt.connections + per_process_cap - 1) / per_process_cap));
    if ((opt.connections + opt.processes - 1) / opt.processes > per_process_cap) {
        fprintf(stderr, "loadclient: %ld connections need at least %ld processes (%ld open files each)\n",
                opt.connections, (opt.connections + per_process_cap - 1) / per_process_cap, kMaxFilesPerProcess);
        return 64;
    }
    // Each source address has ~28k ephemeral ports towards one server port.
    if (opt.connections > long(opt.sources) * 28000) {
        fprintf(stderr, "loadclient: %ld connections need more than %d source addresses\n", opt.connections,
                opt.sources);
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa {};
    sa.sa_handler = [](int) { publisher_done = 1; };
    sigaction(SIGUSR1, &sa, nullptr);
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(uint16_t(opt.port));
    target.sin_addr = host;
    std::vector<sockaddr_in> sources;
    for (int k = 0; k < opt.sources; ++k) {
        sockaddr_in s{};
        s.sin_family = AF_INET;
        s.sin_addr.s_addr = htonl((127u << 24) | uint32_t(2 + k));
        sources.push_back(s);
    }
    long long expected = opt.seq_last >= opt.seq_first ? opt.seq_last - opt.seq_first + 1 : 0;

    double t0 = now_mono();
    std::vector<Child> children(size_t(opt.processes));
    for (int p = 0; p < opt.processes; ++p) {
        int up[2], down[2];
        if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0) {
            perror("pipe");
            return 70;
        }
        fflush(nullptr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 70;
        }
        if (pid == 0) {
            for (int q = 0; q < p; ++q) {
                close(children[size_t(q)].up);
                close(children[size_t(q)].down);
            }
            close(up[0]);
            close(down[1]);
            static Worker w;
            w.opt = opt;
            w.index = p;
            w.up_fd = up[1];
            w.down_fd = down[0];
            w.target = target;
            w.sources = sources;
            w.expected = expected;
            for (long i = p; i < opt.connections; i += opt.processes)
                w.global_ids.push_back(i);
            run_worker(w);
        }
        close(up[1]);
        close(down[0]);
        children[size_t(p)].pid = pid;
        children[size_t(p)].up = up[0];
        children[size_t(p)].down = down[1];
    }

    auto pump = [&](double timeout_s) {
        std::vector<pollfd> fds;
        for (auto &ch : children)
            if (ch.up >= 0)
                fds.push_back(pollfd{ch.up, POLLIN, 0});
        if (fds.empty()) {
            usleep(useconds_t(timeout_s * 1e6));
            return;
        }
        poll(fds.data(), fds.size(), int(timeout_s * 1000));
        for (auto &ch : children)
            if (ch.up >= 0)
                for (auto &f : fds)
                    if (f.fd == ch.up && (f.revents & (POLLIN | POLLHUP | POLLERR)))
                        drain_child(ch);
    };
    auto sum = [&](auto member) {
        long long s = 0;
        for (auto &ch : children)
            s += ch.*member;
        return s;
    };
    auto all_gone = [&]() {
        for (auto &ch : children)
            if (ch.up >= 0 && !ch.final)
                return false;
        return true;
    };

    // Phase 1: connect.
    double last_progress = t0;
    while (true) {
        pump(0.1);
        long long est = sum(&Child::established), failed = sum(&Child::failed);
        double t = now_mono();
        if (est + failed >= opt.connections || t - t0 > opt.connect_timeout + 2 || all_gone())
            break;
        if (t - last_progress >= 5) {
            last_progress = t;
            fprintf(stderr, "loadclient: %.0f s: established %lld, failed %lld of %ld\n", t - t0, est, failed,
                    opt.connections);
        }
    }
    double connect_s = now_mono() - t0;
    long long est = sum(&Child::established), failed = sum(&Child::failed);
    fprintf(stderr, "loadclient: connect phase over after %.1f s: established %lld, failed %lld of %ld\n", connect_s,
            est, failed, opt.connections);
    if (!opt.ready_file.empty()) {
        std::string tmp = opt.ready_file + ".tmp";
        FILE *f = fopen(tmp.c_str(), "w");
        if (f) {
            fprintf(f, "{\"established\": %lld, \"failed\": %lld, \"connect_s\": %.3f}\n", est, failed, connect_s);
            fclose(f);
            rename(tmp.c_str(), opt.ready_file.c_str());
        }
    }

    // Phase 2: the measuring window.
    double m0 = now_mono();
    double done_at = 0;
    last_progress = m0;
    while (now_mono() - m0 < opt.measure && !all_gone()) {
        pump(0.1);
        if (publisher_done && done_at == 0)
            done_at = now_mono();
        if (done_at > 0 && now_mono() - done_at > opt.grace)
            break;
        long long live = sum(&Child::established) - sum(&Child::dropped);
        if (expected > 0 && sum(&Child::complete) >= live)
            break;
        double t = now_mono();
        if (t - last_progress >= 5) {
            last_progress = t;
            fprintf(stderr, "loadclient: measuring %.0f s: live %lld, complete %lld, delivered %lld\n", t - m0, live,
                    sum(&Child::complete), sum(&Child::delivered));
        }
    }
    double measure_s = now_mono() - m0;

    // Phase 3: close and collect.
    for (auto &ch : children)
        if (write(ch.down, "Q", 1) != 1) {
            // the child is gone; its pipe says so
        }
    double q0 = now_mono();
    while (!all_gone() && now_mono() - q0 < 30)
        pump(0.2);
    for (auto &ch : children) {
        if (!ch.final)
            kill(ch.pid, SIGKILL);
        int status;
        waitpid(ch.pid, &status, 0);
    }
    rusage ru{};
    getrusage(RUSAGE_CHILDREN, &ru);
    double client_cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;

    // Merge.
    std::vector<long long> tot(16, 0);
    tot[12] = INT64_MAX; // first_ts_us
    std::map<std::string, long> failures;
    std::vector<uint64_t> hists[3] = {std::vector<uint64_t>(kBuckets), std::vector<uint64_t>(kBuckets),
                                      std::vector<uint64_t>(kBuckets)};
    int missing_reports = 0;
    for (auto &ch : children) {
        if (!ch.final || ch.fin.size() < 16) {
            missing_reports++;
            continue;
        }
        for (size_t i = 0; i < 12; ++i)
            tot[i] += ch.fin[i];
        tot[12] = std::min(tot[12], ch.fin[12]);
        tot[13] = std::max(tot[13], ch.fin[13]);
        tot[14] = std::max(tot[14], ch.fin[14]);
        tot[15] += ch.fin[15];
        std::string fs = ch.failures;
        size_t pos = 0;
        while (pos < fs.size()) {
            size_t sp = fs.find(' ', pos + 1);
            std::string item = fs.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
            while (!item.empty() && item[0] == ' ')
                item.erase(0, 1);
            auto eq = item.find('=');
            if (eq != std::string::npos)
                failures[item.substr(0, eq)] += atol(item.c_str() + eq + 1);
            if (sp == std::string::npos)
                break;
            pos = sp;
        }
        for (int k = 0; k < 3; ++k) {
            const char *h = ch.hist[k].c_str();
            while (*h) {
                char *end;
                unsigned long long idx = strtoull(h, &end, 10);
                if (end == h || *end != ':')
                    break;
                unsigned long long count = strtoull(end + 1, &end, 10);
                if (idx < kBuckets)
                    hists[k][idx] += count;
                h = end;
            }
        }
    }
    const std::vector<uint64_t> &hist = hists[0];
    uint64_t total = 0, split_total = 0;
    for (auto v : hist)
        total += v;
    for (auto v : hists[1])
        split_total += v;
    long long delivered = tot[4];
    double window_s = delivered && tot[13] > tot[12] ? (tot[13] - tot[12]) / 1e6 : 0;
    auto num = [](double v) {
        char b[64];
        if (v < 0)
            return std::string("null");
        snprintf(b, sizeof b, "%.3f", v);
        return std::string(b);
    };
    // Publish-to-stream and stream-to-client, at the stream id's millisecond resolution.
    std::string split = "null";
    if (split_total) {
        split = "{\"events\": " + std::to_string(split_total);
        for (int k = 1; k < 3; ++k)
            for (double p : {50.0, 95.0, 99.0}) {
                char b[96];
                snprintf(b, sizeof b, ", \"%s_p%.0f_ms\": %s", k == 1 ? "to_stream" : "from_stream", p,
                         num(percentile(hists[k], split_total, p)).c_str());
                split += b;
            }
        split += "}";
    }
    std::string fj = "{";
    for (auto &f : failures)
        fj += (fj.size() > 1 ? ", \"" : "\"") + f.first + "\": " + std::to_string(f.second);
    fj += "}";
    printf("{\"connections\": %ld, \"processes\": %d, \"sources\": %d, \"established\": %lld, \"failed\": %lld, "
           "\"failures\": %s, \"dropped\": %lld, \"complete\": %lld, \"expected_per_connection\": %lld, "
           "\"delivered\": %lld, \"lost\": %lld, \"undelivered\": %lld, \"duplicates\": %lld, \"out_of_order\": %lld, "
           "\"stale\": %lld, "
           "\"unparsed\": %lld, \"control_events\": %lld, \"bytes\": %lld, \"p50_ms\": %s, \"p95_ms\": %s, "
           "\"p99_ms\": %s, \"max_ms\": %s, \"delivered_per_s\": %s, \"window_s\": %s, \"connect_s\": %.3f, "
           "\"measure_s\": %.3f, \"client_cpu_s\": %.2f, \"missing_reports\": %d, \"split\": %s}\n",
           opt.connections, opt.processes, opt.sources, tot[0], tot[1], fj.c_str(), tot[2], tot[3], expected, delivered,
           tot[5], tot[15], tot[6], tot[7], tot[8], tot[9], tot[10], tot[11], num(percentile(hist, total, 50)).c_str(),
           num(percentile(hist, total, 95)).c_str(), num(percentile(hist, total, 99)).c_str(),
           num(total ? tot[14] / 1000.0 : -1).c_str(), num(window_s > 0 ? delivered / window_s : -1).c_str(),
           num(window_s > 0 ? window_s : -1).c_str(), connect_s, measure_s, client_cpu, missing_reports, split.c_str());
    return missing_reports ? 1 : 0;
}
