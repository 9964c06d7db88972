// cJSON objects as text: every JSON body and event the notifier builds itself goes through here.
#pragma once

#include <string>

struct cJSON;

namespace pgfeed::notifier {

// `object` printed without spaces, then deleted; "{}" if cJSON runs out of memory.
std::string json_text(cJSON *object);

} // namespace pgfeed::notifier
