// Small text helpers shared by the parsers of outside input (settings, queries, headers).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pgfeed::notifier {

// `text` without the spaces and tabs around it.
std::string_view trim_blanks(std::string_view text);

// The parts between commas, empty ones included ("a,,b" is three parts; "" is one empty part).
std::vector<std::string_view> split_commas(std::string_view text);

// `text` in double quotes for an error message: at most max_bytes of it ("..." marks the cut), and
// anything but printable ASCII, a quote or a backslash shown as '?', so that no input can forge
// or break the message it is quoted in.
std::string quoted_prefix(std::string_view text, std::size_t max_bytes);

} // namespace pgfeed::notifier
