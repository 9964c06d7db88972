// The files of http.static_dir, served at GET / (index.html) and GET /<name>: enough for a page
// such as the demo to come from the same origin as the API it calls, with no CORS. Only regular
// files directly inside the directory or below it; nothing outside it, whatever the path says.
#pragma once

#include <optional>
#include <string>
#include <string_view>

struct evhttp_request;

namespace pgfeed::notifier {

// The file under `root` (an absolute, resolved directory) that `url_path` names, or nullopt when
// it names none: a path with an empty, "." or ".." segment, a NUL, or a hidden name (".env") is
// refused before the file system is asked; so is anything that resolves (symbolic links
// included) outside root. "/" names root/index.html.
std::optional<std::string> static_file_path(const std::string &root, std::string_view url_path);

// The Content-Type for a file name, by its extension; application/octet-stream when unknown.
const char *static_content_type(std::string_view file_name);

class StaticFiles {
  public:
    // `dir` empty: serves nothing. Throws std::runtime_error when dir cannot be resolved.
    explicit StaticFiles(const std::string &dir);

    bool enabled() const { return !root_.empty(); }
    // Answers a GET or HEAD: 200 with the file, or 404.
    void serve(evhttp_request *request, std::string_view url_path) const;

  private:
    std::string root_;
};

} // namespace pgfeed::notifier
