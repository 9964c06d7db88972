// Module load: the pgfeed.user_key setting, the commit wake-up of the numbering worker and, when
// preloaded (shared_preload_libraries), the workers' shared memory and their launcher.
#include "arguments.hpp"
#include "worker_link.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);
}

namespace pgfeed {
void register_launcher(); // numbering_worker.cpp
}

namespace {
shmem_request_hook_type previous_request_hook = nullptr;

void request_shmem() {
    if (previous_request_hook)
        previous_request_hook();
    pgfeed::request_worker_shmem();
}
} // namespace

void _PG_init(void) {
    DefineCustomStringVariable("pgfeed.user_key", "Restricts pgfeed functions to the read state of this user.",
                               "Empty: any user key is accepted. Set it per request, e.g. with SET LOCAL, "
                               "where untrusted code cannot change it.",
                               &pgfeed::restricted_user_key, "", PGC_USERSET, 0, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("pgfeed");
    pgfeed::register_commit_wakeup();
    if (process_shared_preload_libraries_in_progress) {
        previous_request_hook = shmem_request_hook;
        shmem_request_hook = request_shmem;
        pgfeed::attach_worker_shmem();
        pgfeed::register_launcher();
    }
}
