#include "json_text.hpp"

#include <cjson/cJSON.h>

namespace pgfeed::notifier {

std::string json_text(cJSON *object) {
    char *printed = cJSON_PrintUnformatted(object);
    std::string text = printed ? printed : "{}";
    cJSON_free(printed);
    cJSON_Delete(object);
    return text;
}

} // namespace pgfeed::notifier
