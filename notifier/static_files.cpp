#include "static_files.hpp"

#include "http_reply.hpp"

#include <event2/buffer.h>
#include <event2/http.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace pgfeed::notifier {

namespace {

std::optional<std::string> resolved(const std::string &path) {
    char buffer[PATH_MAX];
    if (!realpath(path.c_str(), buffer))
        return std::nullopt;
    return std::string(buffer);
}

struct ContentType {
    std::string_view extension;
    const char *type;
};
constexpr std::array<ContentType, 11> content_types{{
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".webp", "image/webp"},
    {".woff2", "font/woff2"},
}};

void not_found(evhttp_request *request) { send_json(request, 404, "Not Found", error_json("no such file")); }

} // namespace

std::optional<std::string> static_file_path(const std::string &root, std::string_view url_path) {
    if (url_path.empty() || url_path.front() != '/' || url_path.find('\0') != std::string_view::npos)
        return std::nullopt;
    std::string relative = url_path == "/" ? std::string("index.html") : std::string(url_path.substr(1));
    // Segment by segment: no empty ones ("a//b", a trailing '/'), and none starting with '.'.
    for (std::size_t start = 0;;) {
        std::size_t end = relative.find('/', start);
        std::string_view segment = std::string_view(relative).substr(start, end - start);
        if (segment.empty() || segment.front() == '.')
            return std::nullopt;
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    const std::string inside = root.back() == '/' ? root : root + "/"; // the root may be "/"
    auto file = resolved(inside + relative);
    if (!file || file->compare(0, inside.size(), inside) != 0)
        return std::nullopt;
    return file;
}

const char *static_content_type(std::string_view file_name) {
    for (const ContentType &entry : content_types)
        if (file_name.size() >= entry.extension.size() &&
            file_name.substr(file_name.size() - entry.extension.size()) == entry.extension)
            return entry.type;
    return "application/octet-stream";
}

StaticFiles::StaticFiles(const std::string &dir) {
    if (dir.empty())
        return;
    auto root = resolved(dir);
    if (!root)
        throw std::runtime_error("http.static_dir " + dir + " cannot be resolved");
    root_ = *root;
}

void StaticFiles::serve(evhttp_request *request, std::string_view url_path) const {
    auto path = static_file_path(root_, url_path);
    int fd = path ? open(path->c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
    struct stat info {};
    if (fd < 0 || fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        if (fd >= 0)
            close(fd);
        return not_found(request);
    }
    evkeyvalq *headers = evhttp_request_get_output_headers(request);
    evhttp_add_header(headers, "Content-Type", static_content_type(*path));
    evhttp_add_header(headers, "Cache-Control", "no-cache");
    evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
    evbuffer *body = evbuffer_new();
    if (evhttp_request_get_command(request) == EVHTTP_REQ_HEAD) {
        // evhttp would send a body given for HEAD: announce the size and send none.
        evhttp_add_header(headers, "Content-Length", std::to_string(info.st_size).c_str());
        close(fd);
    } else if (evbuffer_add_file(body, fd, 0, info.st_size) != 0) { // takes fd; sendfile where it can
        evbuffer_free(body);
        return not_found(request);
    }
    evhttp_send_reply(request, 200, "OK", body);
    evbuffer_free(body);
}

} // namespace pgfeed::notifier
