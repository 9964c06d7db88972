// Module load: the pgfeed.user_key setting and the transaction callbacks of the capture log.
#include "arguments.hpp"
#include "capture_log.hpp"

extern "C" {
#include "utils/guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);
}

void _PG_init(void) {
    DefineCustomStringVariable("pgfeed.user_key", "Restricts pgfeed functions to the read state of this user.",
                               "Empty: any user key is accepted. Set it per request, e.g. with SET LOCAL, "
                               "where untrusted code cannot change it.",
                               &pgfeed::restricted_user_key, "", PGC_USERSET, 0, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("pgfeed");
    pgfeed::register_capture_log_callbacks();
}
