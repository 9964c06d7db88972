#include "text.hpp"

namespace pgfeed::notifier {

std::string_view trim_blanks(std::string_view text) {
    const char *blanks = " \t";
    std::size_t begin = text.find_first_not_of(blanks);
    if (begin == std::string_view::npos)
        return {};
    return text.substr(begin, text.find_last_not_of(blanks) - begin + 1);
}

std::vector<std::string_view> split_commas(std::string_view text) {
    std::vector<std::string_view> parts;
    while (true) {
        std::size_t comma = text.find(',');
        parts.push_back(text.substr(0, comma));
        if (comma == std::string_view::npos)
            return parts;
        text.remove_prefix(comma + 1);
    }
}

std::string quoted_prefix(std::string_view text, std::size_t max_bytes) {
    std::string out = "\"";
    for (char c : text.substr(0, max_bytes))
        out += c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? c : '?';
    if (text.size() > max_bytes)
        out += "...";
    return out + "\"";
}

} // namespace pgfeed::notifier
