// Module load: the pgfeed.user_key setting, the commit wake-up of the numbering worker and, when
// preloaded (shared_preload_libraries), the workers' shared memory and their launcher.
#include "arguments.hpp"
#include "numbering_worker.hpp"
#include "worker_link.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/guc.h"

#include <cstring>

PG_MODULE_MAGIC;

void _PG_init(void);
}

namespace {
shmem_request_hook_type previous_request_hook = nullptr;

// A session restricted to one user stays restricted: SET to another user, or to nothing, needs a
// superuser. The end of the transaction or function that set it, and RESET, restore the value
// before it without asking (PostgreSQL calls no check hook then).
bool check_user_key(char **newval, void **, GucSource source) {
    const char *current = pgfeed::restricted_user_key;
    if (source != PGC_S_SESSION || !current || !current[0] || strcmp(*newval, current) == 0 || superuser())
        return true;
    GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
    GUC_check_errmsg("pgfeed.user_key restricts this session to another user");
    GUC_check_errhint("Only a superuser may name another user, or none, once it is set.");
    return false;
}

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
                               &pgfeed::restricted_user_key, "", PGC_USERSET, 0, check_user_key, nullptr, nullptr);
    MarkGUCPrefixReserved("pgfeed");
    pgfeed::register_commit_wakeup();
    if (process_shared_preload_libraries_in_progress) {
        previous_request_hook = shmem_request_hook;
        shmem_request_hook = request_shmem;
        pgfeed::attach_worker_shmem();
        pgfeed::register_launcher();
    }
}
