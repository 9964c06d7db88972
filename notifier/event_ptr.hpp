// An owned libevent event (timer, socket or signal watch), freed with event_free.
#pragma once

#include <event2/event.h>

#include <memory>

namespace pgfeed::notifier {

struct EventFree {
    void operator()(event *ev) const { event_free(ev); }
};
using EventPtr = std::unique_ptr<event, EventFree>;

} // namespace pgfeed::notifier
