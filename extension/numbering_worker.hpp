// The background workers that number items after commit (numbering_worker.cpp).
#pragma once

namespace pgfeed {

// Registers the launcher; only while shared_preload_libraries is processed.
void register_launcher();

} // namespace pgfeed
